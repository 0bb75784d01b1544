from rest_framework import serializers
from rest_framework.reverse import reverse

from .catalogue import contents
from .models import PackageVersion


def version_url(request, name: str, version: str) -> str:
    return reverse("version-detail", kwargs={"name": name, "version": version}, request=request)


class DefaultVersionSerializer(serializers.Serializer):
    """A package's default version, and the pin that chose it if any."""

    name = serializers.CharField()
    url = serializers.SerializerMethodField()
    default_version = serializers.CharField(
        help_text="The pinned version, else the highest: the one Cosmos installs when no version is asked for.")
    pinned_version = serializers.CharField(
        allow_null=True, help_text="The version an operator made the default over the highest one; null: none.")

    def get_url(self, summary: dict) -> str:
        return reverse("package-detail", kwargs={"name": summary["name"]}, request=self.context.get("request"))


class PinRequestSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=255, help_text="A published version of the package.")


class PackageSummarySerializer(DefaultVersionSerializer):
    """A package as listed (see ``catalogue.package_summaries``): its default version speaks for it."""

    versions = serializers.ListField(child=serializers.CharField(), help_text="Lowest first.")
    description = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    framework = serializers.BooleanField()
    packaging_version = serializers.CharField()
    updated_at = serializers.DateTimeField()


class VersionSummarySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = PackageVersion
        fields = ["version", "url", "release_version", "packaging_version", "published_at"]

    def get_url(self, version: PackageVersion) -> str:
        return version_url(self.context.get("request"), self.context["package"], version.version)


class PackageDetailSerializer(PackageSummarySerializer):
    """A package with every version, highest last."""

    versions = VersionSummarySerializer(many=True)


class VersionDetailSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="package.name")
    url = serializers.SerializerMethodField()
    upgrades_from = serializers.SerializerMethodField()
    downgrades_to = serializers.SerializerMethodField()
    assets = serializers.SerializerMethodField()
    images = serializers.SerializerMethodField()
    stored_bytes = serializers.SerializerMethodField()
    upload_job = serializers.SerializerMethodField()
    metadata = serializers.JSONField(read_only=True)

    class Meta:
        model = PackageVersion
        fields = ["name", "version", "url", "release_version", "packaging_version", "description", "tags",
                  "framework", "min_dcos_release_version", "upgrades_from", "downgrades_to", "published_at",
                  "bundle_digest", "content_digest", "stored_bytes", "assets", "images", "upload_job", "metadata"]

    def _contents(self, version: PackageVersion):
        if not hasattr(self, "_cached_contents"):
            self._cached_contents = contents(version)
        return self._cached_contents

    def get_url(self, version: PackageVersion) -> str:
        return version_url(self.context.get("request"), version.package.name, version.version)

    def get_upgrades_from(self, version: PackageVersion):
        return version.metadata.get("upgradesFrom")

    def get_downgrades_to(self, version: PackageVersion):
        return version.metadata.get("downgradesTo")

    def get_assets(self, version: PackageVersion) -> list[dict]:
        return self._contents(version).assets

    def get_images(self, version: PackageVersion) -> list[dict]:
        return self._contents(version).images

    def get_stored_bytes(self, version: PackageVersion) -> int:
        return self._contents(version).stored_bytes

    def get_upload_job(self, version: PackageVersion):
        # Only a job the caller may see: a cluster's token sees its cluster's jobs alone.
        job = self.context["request"].user.jobs(version.ingest_jobs.order_by("-created_at")).first()
        if job is None:
            return None
        return {"id": str(job.pk), "url": reverse("job-detail", args=[job.pk], request=self.context.get("request"))}
