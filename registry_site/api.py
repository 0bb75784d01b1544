"""One error shape for the whole API: ``{"code", "message", "details"}`` with a fitting HTTP status."""

from __future__ import annotations

import io

from django.conf import settings
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from access.auth import WWW_AUTHENTICATE
from dcos_bundle.errors import RegistryError

STATUS_BY_CODE = {
    "bundle_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "length_required": status.HTTP_411_LENGTH_REQUIRED,
    "range_mismatch": status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
    "upload_unknown": status.HTTP_404_NOT_FOUND,
    "upload_closed": status.HTTP_409_CONFLICT,
    "upload_incomplete": status.HTTP_409_CONFLICT,
    "job_finished": status.HTTP_409_CONFLICT,
    "version_conflict": status.HTTP_409_CONFLICT,
    "insufficient_storage": status.HTTP_507_INSUFFICIENT_STORAGE,
    "storage_migration": status.HTTP_503_SERVICE_UNAVAILABLE,
    "storage_moved": status.HTTP_503_SERVICE_UNAVAILABLE,
    "package_not_found": status.HTTP_404_NOT_FOUND,
    "version_not_found": status.HTTP_404_NOT_FOUND,
    "cluster_not_found": status.HTTP_404_NOT_FOUND,
    "token_not_found": status.HTTP_404_NOT_FOUND,
    "invalid_token": status.HTTP_401_UNAUTHORIZED,
    "request_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
}

DRF_CODES = {
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.ParseError: "invalid_json",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid_request",
}


def exception_handler(exc, context):
    if isinstance(exc, RegistryError):
        code = STATUS_BY_CODE.get(exc.code, status.HTTP_400_BAD_REQUEST)
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if code == status.HTTP_401_UNAUTHORIZED else None
        return Response(exc.to_json(), status=code, headers=headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((name for kind, name in DRF_CODES.items() if isinstance(exc, kind)), "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "; ".join(f"{field}: {' '.join(str(item) for item in errors)}" for field, errors in fields.items())
        response.data = {"code": code, "message": f"Invalid request: {message}.", "details": fields}
    else:
        response.data = {"code": code, "message": str(getattr(exc, "detail", exc)), "details": {}}
    return response


class LimitedJSONParser(JSONParser):
    """JSON bodies of at most API_MAX_JSON_BYTES: the API's documents are small, bundles have their own endpoints."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_JSON_BYTES
        declared = parser_context["request"].META.get("CONTENT_LENGTH") if parser_context else None
        body = stream.read(limit + 1) if stream is not None else b""
        if (declared and declared.isdigit() and int(declared) > limit) or len(body) > limit:
            raise RegistryError("request_too_large", f"A JSON request body may have at most {limit} bytes; upload "
                              "bundles to /api/v1/bundles/ or /api/v1/uploads/.", limit=limit)
        return super().parse(io.BytesIO(body), media_type, parser_context)


def server_error(request):
    """What a failure looks like in production: a sentence and a code, never a stack trace (it goes to the log)."""
    return JsonResponse({"code": "server_error", "message": "The registry failed to answer this request; the "
                         "error is in its log.", "details": {}}, status=500)
