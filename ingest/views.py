"""The upload API: thin views that stage bytes and answer 202 with a job to poll."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from access.auth import request_actor
from access.throttling import UploadRateThrottle
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.flags import parse_bool
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest import services, staging
from ingest.models import IngestJob, UploadSession

from .multipart import staged_multipart_bundle
from .serializers import CommitSerializer, IngestJobSerializer, UploadSessionCreateSerializer, UploadSessionSerializer

# Positions of at most 19 digits: every bundle size fits, and int() never sees thousands of digits.
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19})")
# Multipart framing around the file: boundaries and part headers.
MULTIPART_OVERHEAD = 64 * 1024


def _content_length(request) -> int | None:
    value = request.META.get("CONTENT_LENGTH")
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise RegistryError(ErrorCode.INVALID_REQUEST, f"Content-Length {value[:30]!r} is not a number of bytes.")
    return int(value)


class ReachedObjects:
    """``get_object`` among what the caller reaches (``get_queryset`` asks its principal); the rest answers the
    view's ``unknown(pk)`` error, as unknown ids do, so that another caller's objects do not show they exist."""

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            raise self.unknown(self.kwargs["pk"]) from None


def _accepted(request, job: IngestJob) -> Response:
    body = IngestJobSerializer(job, context={"request": request}).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["url"])})


class BundleUploadView(APIView):
    """POST a whole bundle: the raw body, or a multipart form with a ``bundle`` file field."""

    parser_classes = []
    # Its body is a bundle, not a form the browsable API could draw.
    renderer_classes = [JSONRenderer]
    throttle_classes = [UploadRateThrottle]

    @extend_schema(
        parameters=[
            OpenApiParameter("file_name", description="The bundle's file name, kept with its job (at most 255 "
                             "printable characters)."),
            OpenApiParameter("X-File-Name", location=OpenApiParameter.HEADER, description="The file name, when the "
                             "query does not give file_name."),
            OpenApiParameter("sha256", description="The sha256 the bundle must hash to (hex or sha256:<hex>)."),
            OpenApiParameter("replace", bool, description="Replace a published version of the same name and version."),
        ],
        request={BUNDLE_MEDIA_TYPE: OpenApiTypes.BINARY},
        responses={202: IngestJobSerializer},
    )
    def post(self, request):
        length = _content_length(request)
        if length is None:
            raise RegistryError(ErrorCode.LENGTH_REQUIRED, "Send the bundle with a Content-Length header (or use the "
                              "resumable upload API).")
        if length == 0:
            raise RegistryError(ErrorCode.EMPTY_BUNDLE, "The upload is empty; a bundle is a ZIP file.")
        if length > settings.MAX_BUNDLE_BYTES + MULTIPART_OVERHEAD:
            raise staging.too_large(length)
        replace = parse_bool(request.query_params.get("replace"), "replace", default=False)
        expected = services.parse_sha256(request.query_params.get("sha256"))
        name = request.query_params.get("file_name") or request.headers.get("X-File-Name", "")
        actor = request_actor(request)
        if request.content_type.startswith("multipart/form-data"):
            job = staged_multipart_bundle(request._request, actor=actor, replace=replace, expected_digest=expected)
        else:
            job = services.receive_bundle(request._request, actor=actor, declared_size=length, bundle_name=name,
                                          replace=replace, expected_digest=expected)
        return _accepted(request, job)


class UploadSessionViewSet(ReachedObjects, mixins.CreateModelMixin, mixins.RetrieveModelMixin,
                           viewsets.GenericViewSet):
    """Resumable uploads: open, PUT chunks with Content-Range, HEAD for the offset, commit or DELETE."""

    serializer_class = UploadSessionSerializer

    def get_queryset(self):
        return self.request.user.sessions(UploadSession.objects.all())

    def unknown(self, pk) -> RegistryError:
        return services.unknown_upload(pk)

    def get_throttles(self):
        return [UploadRateThrottle()] if self.action == "create" else []

    def _offset_headers(self, session: UploadSession) -> dict:
        headers = {"Upload-Offset": str(session.offset)}
        if session.offset:
            headers["Range"] = f"bytes=0-{session.offset - 1}"
        return headers

    def create(self, request):
        given = UploadSessionCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        session = services.open_upload(
            actor=request_actor(request),
            size=given.validated_data["size"],
            expected_digest=services.parse_sha256(given.validated_data["sha256"]),
            file_name=given.validated_data["file_name"],
            replace=given.validated_data["replace"],
        )
        body = self.get_serializer(session).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": str(body["url"]), **self._offset_headers(session)})

    def retrieve(self, request, pk=None):
        session = self.get_object()
        return Response(self.get_serializer(session).data, headers=self._offset_headers(session))

    @extend_schema(
        parameters=[OpenApiParameter("Content-Range", location=OpenApiParameter.HEADER, required=True,
                                     description="bytes <start>-<end>/<size>: where the chunk goes.")],
        request={"application/octet-stream": OpenApiTypes.BINARY},
    )
    def update(self, request, pk=None):
        """PUT one chunk: ``Content-Range: bytes <start>-<end>/<size>``."""
        session = self.get_object()
        header = request.headers.get("Content-Range", "")
        match = _CONTENT_RANGE.fullmatch(header)
        if not match:
            raise RegistryError(ErrorCode.RANGE_INVALID, f"Content-Range must read 'bytes <start>-<end>/<size>', not "
                                f"{header[:100]!r}.")
        start, end, total = (int(part) for part in match.groups())
        length = _content_length(request)
        if length is None:
            # A chunked body reaches Django as an empty one: it would be taken for a chunk cut off at 0 bytes.
            raise RegistryError(ErrorCode.LENGTH_REQUIRED, "Send each chunk with a Content-Length header (chunked "
                                "transfer encoding is not accepted).")
        if length != end - start + 1:
            raise RegistryError(ErrorCode.RANGE_INVALID, f"Content-Range covers {end - start + 1} bytes, the body is {length}.")
        try:
            session = services.append_chunk(session.pk, request._request, start, end, total)
        except RegistryError as error:
            if error.code == "range_mismatch":
                return Response(
                    error.to_json(), status=status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
                    headers={"Upload-Offset": str(error.details["offset"])},
                )
            raise
        return Response(self.get_serializer(session).data, headers=self._offset_headers(session))

    def destroy(self, request, pk=None):
        services.cancel_upload(self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def commit(self, request, pk=None):
        session = self.get_object()
        given = CommitSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        job = services.commit_upload(session.pk, services.parse_sha256(given.validated_data["sha256"]))
        return _accepted(request, job)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("state", enum=IngestJob.State.values, description="Only jobs in this state."),
    OpenApiParameter("stage", enum=IngestJob.Stage.values, description="Only jobs at this stage."),
    OpenApiParameter("package", description="Only jobs of this package."),
    OpenApiParameter("error_code", description="Only jobs that failed with this code."),
]))
class IngestJobViewSet(ReachedObjects, viewsets.ReadOnlyModelViewSet):
    """Ingest jobs: filter with ``state``, ``stage``, ``package``, ``error_code``; cancel one."""

    serializer_class = IngestJobSerializer
    FILTERS = {"state": "state", "stage": "stage", "package": "package_name", "error_code": "error_code"}

    def unknown(self, pk) -> RegistryError:
        return RegistryError(ErrorCode.JOB_NOT_FOUND, f"There is no job {pk}.", job=str(pk))

    def get_queryset(self):
        jobs = self.request.user.jobs(
            IngestJob.objects.select_related("package_version__package").prefetch_related("stages"))
        for parameter, field in self.FILTERS.items():
            if value := self.request.query_params.get(parameter):
                jobs = jobs.filter(**{field: value})
        return jobs

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = services.cancel_job(self.get_object(), request_actor(request))
        return Response(IngestJobSerializer(job, context={"request": request}).data)
