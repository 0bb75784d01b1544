"""Every error the registry and its tools can report: one typed registry of codes, and the one error type.

Plain Python (no Django). ``ErrorCode`` names each failure once, with the HTTP status the API
answers it with; ``RegistryError`` carries a code, a sentence for people (``message``) and
``details`` that say where (which file, field, member, layer or URL). A code that is not a member
of ``ErrorCode`` cannot be raised: a misspelt one fails at once, not as a silent 400.
"""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus


class ErrorCode(StrEnum):
    """A machine-readable, stable error code and the HTTP status of a request that ends with it."""

    status: HTTPStatus

    def __new__(cls, value: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        return member

    # The bundle as a ZIP file (inspect).
    NOT_A_ZIP = "not_a_zip"
    EMPTY_BUNDLE = "empty_bundle"
    TRUNCATED_ZIP = "truncated_zip"
    ZIP_BOMB = "zip_bomb"
    ZIP_HEADER_MISMATCH = "zip_header_mismatch"
    ZIP_POLYGLOT = "zip_polyglot"
    ZIP_TRAILING_DATA = "zip_trailing_data"
    TOO_MANY_MEMBERS = "too_many_members"
    DUPLICATE_MEMBER = "duplicate_member"
    ENCRYPTED_MEMBER = "encrypted_member"
    UNSAFE_MEMBER_NAME = "unsafe_member_name"
    UNSAFE_MEMBER_TYPE = "unsafe_member_type"
    UNSUPPORTED_COMPRESSION = "unsupported_compression"
    MEMBER_MISSING = "member_missing"
    MEMBER_TOO_LARGE = "member_too_large"
    MEMBER_CORRUPT = "member_corrupt"
    DIGEST_MISMATCH = "digest_mismatch"
    SIZE_MISMATCH = "size_mismatch"

    # The bundle's documents (validate).
    INVALID_JSON = "invalid_json"
    JSON_TOO_DEEP = "json_too_deep"
    JSON_NUMBER_TOO_LARGE = "json_number_too_large"
    UNSUPPORTED_CHARACTER = "unsupported_character"
    FIELD_TOO_LONG = "field_too_long"
    INVALID_MANIFEST = "invalid_manifest"
    INVALID_METADATA = "invalid_metadata"
    METADATA_MISSING = "metadata_missing"
    MANIFEST_MISMATCH = "manifest_mismatch"
    ASSET_MISSING = "asset_missing"
    TEMPLATE_INVALID = "template_invalid"
    TEMPLATE_INVALID_JSON = "template_invalid_json"
    TEMPLATE_RENDER_FAILED = "template_render_failed"
    TEMPLATE_PARTIAL = "template_partial"

    # The bundle's images (validate, verify_images).
    IMAGE_INDEX_MISSING = "image_index_missing"
    IMAGE_INDEX_MISMATCH = "image_index_mismatch"
    INVALID_IMAGE = "invalid_image"
    INVALID_DESCRIPTOR = "invalid_descriptor"
    UNSUPPORTED_DIGEST = "unsupported_digest"
    INVALID_DIFF_ID = "invalid_diff_id"
    UNSUPPORTED_IMAGE = "unsupported_image"
    LAYER_CORRUPT = "layer_corrupt"
    DIFF_ID_MISMATCH = "diff_id_mismatch"
    DIFF_IDS_MISMATCH = "diff_ids_mismatch"

    # Publishing.
    VERSION_CONFLICT = "version_conflict", HTTPStatus.CONFLICT
    PACKAGE_OUTSIDE_CLUSTER = "package_outside_cluster", HTTPStatus.FORBIDDEN

    # Uploads.
    BUNDLE_TOO_LARGE = "bundle_too_large", HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    LENGTH_REQUIRED = "length_required", HTTPStatus.LENGTH_REQUIRED
    INVALID_DIGEST = "invalid_digest"
    INVALID_SIZE = "invalid_size"
    RANGE_INVALID = "range_invalid"
    RANGE_MISMATCH = "range_mismatch", HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
    UPLOAD_UNKNOWN = "upload_unknown", HTTPStatus.NOT_FOUND
    UPLOAD_CLOSED = "upload_closed", HTTPStatus.CONFLICT
    UPLOAD_INCOMPLETE = "upload_incomplete", HTTPStatus.CONFLICT
    UPLOAD_DIGEST_MISMATCH = "upload_digest_mismatch"
    UPLOAD_INTERRUPTED = "upload_interrupted"
    INSUFFICIENT_STORAGE = "insufficient_storage", HTTPStatus.INSUFFICIENT_STORAGE
    STORAGE_MIGRATION = "storage_migration", HTTPStatus.SERVICE_UNAVAILABLE
    STORAGE_MOVED = "storage_moved", HTTPStatus.SERVICE_UNAVAILABLE
    # The task queue cannot be reached, so the bundle could not be handed to the workers; nothing was queued.
    BROKER_UNAVAILABLE = "broker_unavailable", HTTPStatus.SERVICE_UNAVAILABLE

    # Jobs.
    JOB_NOT_FOUND = "job_not_found", HTTPStatus.NOT_FOUND
    JOB_FINISHED = "job_finished", HTTPStatus.CONFLICT
    JOB_NOT_FAILED = "job_not_failed"
    JOB_RETRIED = "job_retried"
    BUNDLE_GONE = "bundle_gone"
    # Failures of the registry, not of the bundle: a retry of the same bundle may succeed.
    INTERNAL_ERROR = "internal_error", HTTPStatus.INTERNAL_SERVER_ERROR
    WORKER_LOST = "worker_lost", HTTPStatus.INTERNAL_SERVER_ERROR
    BLOB_STORE_UNSTABLE = "blob_store_unstable", HTTPStatus.SERVICE_UNAVAILABLE

    # The catalogue, clusters and tokens.
    PACKAGE_NOT_FOUND = "package_not_found", HTTPStatus.NOT_FOUND
    VERSION_NOT_FOUND = "version_not_found", HTTPStatus.NOT_FOUND
    CLUSTER_NOT_FOUND = "cluster_not_found", HTTPStatus.NOT_FOUND
    TOKEN_NOT_FOUND = "token_not_found", HTTPStatus.NOT_FOUND
    INVALID_TOKEN = "invalid_token", HTTPStatus.UNAUTHORIZED
    INVALID_SCOPE = "invalid_scope"

    # Transfer sets between registries (export, import, inventory).
    TRANSFER_INVALID = "transfer_invalid"
    TRANSFER_DAMAGED = "transfer_damaged"
    TRANSFER_INCOMPLETE = "transfer_incomplete"
    TRANSFER_EXISTS = "transfer_exists", HTTPStatus.CONFLICT
    INVALID_INVENTORY = "invalid_inventory"

    # Requests, as every API answers them.
    INVALID_REQUEST = "invalid_request"
    REQUEST_TOO_LARGE = "request_too_large", HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    NOT_FOUND = "not_found", HTTPStatus.NOT_FOUND
    NOT_ACCEPTABLE = "not_acceptable", HTTPStatus.NOT_ACCEPTABLE
    METHOD_NOT_ALLOWED = "method_not_allowed", HTTPStatus.METHOD_NOT_ALLOWED
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    NOT_AUTHENTICATED = "not_authenticated", HTTPStatus.UNAUTHORIZED
    AUTHENTICATION_FAILED = "authentication_failed", HTTPStatus.UNAUTHORIZED
    PERMISSION_DENIED = "permission_denied", HTTPStatus.FORBIDDEN
    THROTTLED = "throttled", HTTPStatus.TOO_MANY_REQUESTS
    SERVER_ERROR = "server_error", HTTPStatus.INTERNAL_SERVER_ERROR
    # The database or the blob store is unreachable: retry after the Retry-After header's seconds.
    SERVICE_UNAVAILABLE = "service_unavailable", HTTPStatus.SERVICE_UNAVAILABLE
    API_ERROR = "error", HTTPStatus.INTERNAL_SERVER_ERROR

    # The builder and the dcos-registry command (never answered over HTTP).
    ASSET_UNREACHABLE = "asset_unreachable"
    ASSET_CONTENT_HASH_MISMATCH = "asset_content_hash_mismatch"
    DOCKER_UNAVAILABLE = "docker_unavailable"
    IMAGE_NOT_FOUND = "image_not_found"
    IMAGE_EXPORT_CORRUPT = "image_export_corrupt"
    INVALID_BUILD_DEFINITION = "invalid_build_definition"
    INVALID_PACKAGE = "invalid_package"
    INVALID_MIRROR = "invalid_mirror"
    INVALID_SOURCE_DATE_EPOCH = "invalid_source_date_epoch"
    FILE_MISSING = "file_missing"
    FILE_NOT_FOUND = "file_not_found"
    OUTPUT_EXISTS = "output_exists"
    CONFIG_INVALID = "config_invalid"
    REGISTRY_NOT_CONFIGURED = "registry_not_configured"
    REGISTRY_UNREACHABLE = "registry_unreachable"
    BUNDLE_CHANGED = "bundle_changed"
    INVALID_REPOSITORY = "invalid_repository"
    REPOSITORY_UNREACHABLE = "repository_unreachable"
    MIRROR_INCOMPLETE = "mirror_incomplete"


class RegistryError(Exception):
    def __init__(self, code: ErrorCode, message: str, **details):
        if not isinstance(code, ErrorCode):
            raise TypeError(f"{code!r} is not an ErrorCode: every error the registry reports has its code there.")
        super().__init__(message)
        self.code: str = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return self.code.status

    def to_json(self) -> dict:
        return {"code": str(self.code), "message": self.message, "details": self.details}


class RemoteError(RegistryError):
    """An error a registry answered the ``dcos-registry`` command with: its code is the registry's, whatever it is."""

    def __init__(self, code: str, message: str, status: int = 0, **details):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.details = details
        self._status = status

    @property
    def status(self) -> int:
        return self._status
