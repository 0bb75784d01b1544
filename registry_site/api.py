"""One error shape for the whole API: ``{"code", "message", "details"}`` with a fitting HTTP status."""

from __future__ import annotations

import sys

from django.conf import settings
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from access.auth import WWW_AUTHENTICATE
from blobs.outages import unavailable_component
from dcos_bundle.documents import parse_json
from dcos_bundle.errors import ErrorCode, RegistryError

# DRF keeps its own statuses; these name its exceptions in the registry's codes.
DRF_CODES = {
    exceptions.NotFound: ErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: ErrorCode.NOT_ACCEPTABLE,
    exceptions.ParseError: ErrorCode.INVALID_JSON,
    exceptions.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    exceptions.NotAuthenticated: ErrorCode.NOT_AUTHENTICATED,
    exceptions.AuthenticationFailed: ErrorCode.AUTHENTICATION_FAILED,
    exceptions.PermissionDenied: ErrorCode.PERMISSION_DENIED,
    exceptions.Throttled: ErrorCode.THROTTLED,
    exceptions.ValidationError: ErrorCode.INVALID_REQUEST,
}


def exception_handler(exc, context):
    if isinstance(exc, RegistryError):
        headers = {}
        if exc.status == status.HTTP_401_UNAUTHORIZED:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        if exc.status == status.HTTP_503_SERVICE_UNAVAILABLE:
            # Something the registry needs is away or busy for a while (the broker, a storage migration).
            headers["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
        return Response(exc.to_json(), status=exc.status, headers=headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((name for kind, name in DRF_CODES.items() if isinstance(exc, kind)), ErrorCode.API_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "; ".join(f"{field}: {' '.join(str(item) for item in errors)}" for field, errors in fields.items())
        response.data = {"code": code, "message": f"Invalid request: {message}.", "details": fields}
    else:
        response.data = {"code": code, "message": str(getattr(exc, "detail", exc)), "details": {}}
    return response


class LimitedJSONParser(JSONParser):
    """JSON bodies of at most API_MAX_JSON_BYTES: the API's documents are small, bundles have their own endpoints.

    Read as a bundle's documents are (dcos_bundle.documents): numbers within a double, nesting at most
    MAX_JSON_DEPTH deep, no NaN, NUL or unpaired surrogate, each refused with its code.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_JSON_BYTES
        declared = parser_context["request"].META.get("CONTENT_LENGTH", "") if parser_context else ""
        body = stream.read(limit + 1) if stream is not None else b""
        # Compared as text first: int() of thousands of digits is refused.
        declared_too_large = declared.isascii() and declared.isdigit() and (
            len(declared.lstrip("0")) > len(str(limit)) or int(declared) > limit)
        if declared_too_large or len(body) > limit:
            raise RegistryError(ErrorCode.REQUEST_TOO_LARGE, f"A JSON request body may have at most {limit} bytes; upload "
                              "bundles to /api/v1/bundles/ or /api/v1/uploads/.", limit=limit)
        return parse_json(body, "The request body")


def server_error(request):
    """What a failure looks like in production: a sentence and a code, never a stack trace (it goes to the log).

    Django calls this while it handles the exception, so ``sys.exc_info()`` names it: an outage of a
    service the registry depends on is a 503 the client may retry, not the registry's own 500.
    """
    component = unavailable_component(sys.exc_info()[1])
    if component is not None:
        response = JsonResponse({"code": ErrorCode.SERVICE_UNAVAILABLE, "message": f"The registry's {component} is "
                                 "unavailable; retry in a moment.", "details": {"component": component}}, status=503)
        response["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"code": ErrorCode.SERVER_ERROR, "message": "The registry failed to answer this request; the "
                         "error is in its log.", "details": {}}, status=500)
