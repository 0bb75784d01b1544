from rest_framework import serializers
from rest_framework.reverse import reverse

from ingest.models import IngestJob, JobStage, UploadSession


class JobStageSerializer(serializers.ModelSerializer):
    percent = serializers.FloatField(read_only=True)

    class Meta:
        model = JobStage
        fields = ["stage", "bytes_done", "bytes_total", "percent", "started_at", "finished_at"]


class IngestJobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="job-detail")
    stages = JobStageSerializer(many=True, read_only=True)
    error = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()

    class Meta:
        model = IngestJob
        fields = [
            "id", "url", "state", "stage", "stages", "bundle_name", "bundle_size", "bundle_digest", "replace",
            "package_name", "version", "outcome", "error", "result", "created_at", "started_at", "finished_at",
            "heartbeat_at",
        ]

    def get_error(self, job: IngestJob):
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message, "details": job.error_details}

    def get_result(self, job: IngestJob):
        version = job.package_version
        if version is None:
            return None
        return {"package": version.package.name, "version": version.version,
                "release_version": version.release_version}


class UploadSessionSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="upload-detail")
    job = serializers.SerializerMethodField()

    class Meta:
        model = UploadSession
        fields = ["id", "url", "state", "size", "offset", "expected_digest", "file_name", "replace", "job",
                  "created_at", "updated_at"]

    def get_job(self, session: UploadSession):
        if session.job_id is None:
            return None
        return reverse("job-detail", args=[session.job_id], request=self.context.get("request"))


class UploadSessionCreateSerializer(serializers.Serializer):
    size = serializers.IntegerField(min_value=1)
    sha256 = serializers.CharField(required=False, allow_blank=True, default="")
    file_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    replace = serializers.BooleanField(required=False, default=False)


class CommitSerializer(serializers.Serializer):
    sha256 = serializers.CharField(required=False, allow_blank=True, default="")
