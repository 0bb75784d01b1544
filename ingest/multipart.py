"""Multipart bundle uploads, streamed straight into staging by a Django upload handler."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from ingest import services, staging
from ingest.blobstore.base import digest_of
from ingest.errors import IngestError
from ingest.models import IngestJob

BUNDLE_FIELD = "bundle"


class StagingUploadHandler(FileUploadHandler):
    """Writes the ``bundle`` file field to its staging path as it arrives, hashing it."""

    def __init__(self, request, path):
        super().__init__(request)
        self.path = path
        self.staged: UploadedFile | None = None
        self._file = None

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != BUNDLE_FIELD or self.staged is not None or self._file is not None:
            raise IngestError("invalid_request", f"Send exactly one file, in the form field {BUNDLE_FIELD!r}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        self._hash = hashlib.sha256()
        self._size = 0

    def receive_data_chunk(self, raw_data, start):
        self._size += len(raw_data)
        if self._size > settings.MAX_BUNDLE_BYTES:
            raise staging.too_large(self._size)
        self._hash.update(raw_data)
        self._file.write(raw_data)
        return None

    def file_complete(self, file_size):
        self._file.close()
        self.staged = UploadedFile(name=self.file_name, size=self._size)
        self.staged.digest = digest_of(self._hash.hexdigest())
        return self.staged

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def staged_multipart_bundle(request, *, replace: bool, expected_digest: str) -> IngestJob:
    job_id = uuid.uuid4()
    path = staging.bundle_path(job_id)
    handler = StagingUploadHandler(request, path)
    request.upload_handlers = [handler]
    try:
        request.FILES  # parses the form, streaming the file through the handler
        replace = replace or request.POST.get("replace", "").lower() in ("1", "true", "yes", "on")
        expected_digest = expected_digest or services.parse_sha256(request.POST.get("sha256"))
        if handler.staged is None:
            raise IngestError("invalid_request", f"The form has no file field {BUNDLE_FIELD!r}.")
        if expected_digest and handler.staged.digest != expected_digest:
            raise IngestError(
                "upload_digest_mismatch",
                f"The uploaded bundle hashes to {handler.staged.digest}, not to the declared {expected_digest}; "
                "nothing was kept.",
                expected=expected_digest, actual=handler.staged.digest,
            )
        return services.queue_staged(job_id, path, size=handler.staged.size, digest=handler.staged.digest,
                                     bundle_name=handler.staged.name or "", replace=replace)
    except BaseException:
        handler.close()
        staging.remove(path)
        raise
