from rest_framework import serializers
from rest_framework.reverse import reverse

from .catalogue import contents
from .models import Package, PackageVersion
from .versions import highest, sorted_versions


def version_url(request, name: str, version: str) -> str:
    return reverse("version-detail", kwargs={"name": name, "version": version}, request=request)


class PackageSummarySerializer(serializers.ModelSerializer):
    """A package as listed: its default (highest) version speaks for it."""

    url = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()
    default_version = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    framework = serializers.SerializerMethodField()
    packaging_version = serializers.SerializerMethodField()

    class Meta:
        model = Package
        fields = ["name", "url", "default_version", "versions", "description", "tags", "framework",
                  "packaging_version", "updated_at"]

    def _default(self, package: Package) -> PackageVersion:
        # Versions are prefetched by the view: no query per package.
        versions = {version.version: version for version in package.versions.all()}
        return versions[highest(list(versions))]

    def get_url(self, package: Package) -> str:
        return reverse("package-detail", kwargs={"name": package.name}, request=self.context.get("request"))

    def get_versions(self, package: Package) -> list[str]:
        return sorted_versions([version.version for version in package.versions.all()])

    def get_default_version(self, package: Package) -> str:
        return self._default(package).version

    def get_description(self, package: Package) -> str:
        return self._default(package).description

    def get_tags(self, package: Package) -> list[str]:
        return self._default(package).tags

    def get_framework(self, package: Package) -> bool:
        return self._default(package).framework

    def get_packaging_version(self, package: Package) -> str:
        return self._default(package).packaging_version


class VersionSummarySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = PackageVersion
        fields = ["version", "url", "release_version", "packaging_version", "published_at"]

    def get_url(self, version: PackageVersion) -> str:
        return version_url(self.context.get("request"), version.package.name, version.version)


class PackageDetailSerializer(PackageSummarySerializer):
    """A package with every version, highest last."""

    def get_versions(self, package: Package) -> list[dict]:
        by_number = {version.version: version for version in package.versions.all()}
        ordered = [by_number[number] for number in sorted_versions(list(by_number))]
        return VersionSummarySerializer(ordered, many=True, context=self.context).data


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
        job = version.ingest_jobs.order_by("-created_at").first()
        if job is None:
            return None
        return {"id": str(job.pk), "url": reverse("job-detail", args=[job.pk], request=self.context.get("request"))}
