"""Export and import over the API (admin scope): each answers 202 with an operation run to poll.

The paths are the registry's own: a directory on its host (or a volume it mounts) or an
``s3://bucket/prefix`` its ``S3_*`` settings reach.
"""

from __future__ import annotations

from django.db import transaction
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from access.auth import ADMIN, request_actor
from ingest.tasks import require_broker
from operations.export import selection
from operations.models import OperationRun

from . import tasks


class OperationRunSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = OperationRun
        fields = ["id", "url", "kind", "target", "started_at", "finished_at", "succeeded", "summary"]

    def get_url(self, run: OperationRun) -> str:
        return reverse("operation-detail", args=[run.pk])


class ExportRequest(serializers.Serializer):
    to = serializers.CharField(max_length=1024, help_text="A directory on the registry's host, or s3://bucket/prefix.")
    cluster = serializers.CharField(required=False, allow_blank=True)
    packages = serializers.ListField(child=serializers.CharField(max_length=1024), required=False, default=list,
                                     help_text="NAME or NAME=PATTERN,PATTERN, as manage.py export --package.")
    dcos_version = serializers.CharField(required=False, allow_blank=True)
    since = serializers.CharField(required=False, allow_blank=True, max_length=1024,
                                  help_text="An inventory or transfer.json file on the registry's host.")
    volume_size = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class ImportRequest(serializers.Serializer):
    source = serializers.CharField(max_length=1024, help_text="The transfer set: a directory or s3://bucket/prefix.")
    replace = serializers.BooleanField(default=False)

    def get_fields(self):
        # The request names the transfer set "from", as manage.py import --from does; Python cannot declare it.
        fields = super().get_fields()
        fields["from"] = fields.pop("source")
        return fields


def _started(kind: OperationRun.Kind, target: str, send) -> Response:
    """Record a run and answer 202 with it; ``send(run_id)`` sends its task once the run is committed (the worker
    must find it)."""
    require_broker()
    with transaction.atomic():
        run = OperationRun.objects.create(kind=kind, target=target)
        transaction.on_commit(lambda: send(run.pk))
    return Response(OperationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED,
                    headers={"Location": reverse("operation-detail", args=[run.pk])})


class ExportView(APIView):
    """Start an export; answers 202 with the operation run."""

    required_scope = ADMIN

    @extend_schema(request=ExportRequest, responses={202: OperationRunSerializer})
    def post(self, request):
        fields = ExportRequest(data=request.data)
        fields.is_valid(raise_exception=True)
        data = fields.validated_data
        choice = {"cluster": data.get("cluster") or None, "packages": data["packages"],
                  "dcos_version": data.get("dcos_version") or None}
        selection(**choice)  # a wrong cluster or pattern is refused now, not in the run
        return _started(OperationRun.Kind.EXPORT, data["to"], lambda run_id: tasks.export_catalogue.delay(
            run_id, data["to"], choice, data.get("since") or None, data.get("volume_size")))


class ImportView(APIView):
    """Start an import; answers 202 with the operation run. Each version's ingest job names the caller."""

    required_scope = ADMIN

    @extend_schema(request=ImportRequest, responses={202: OperationRunSerializer})
    def post(self, request):
        fields = ImportRequest(data=request.data)
        fields.is_valid(raise_exception=True)
        data = fields.validated_data
        return _started(OperationRun.Kind.IMPORT, data["from"], lambda run_id: tasks.import_catalogue.delay(
            run_id, data["from"], data["replace"], request_actor(request).label))


class OperationRunDetail(generics.RetrieveAPIView):
    """One operation run: while ``finished_at`` is empty it runs; then ``succeeded`` and ``summary`` say how."""

    required_scope = ADMIN
    serializer_class = OperationRunSerializer
    queryset = OperationRun.objects.all()


urlpatterns = [
    path("transfers/exports/", ExportView.as_view(), name="transfer-export"),
    path("transfers/imports/", ImportView.as_view(), name="transfer-import"),
    path("operations/<int:pk>/", OperationRunDetail.as_view(), name="operation-detail"),
]
