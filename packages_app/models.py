"""The catalogue: packages, their published versions, and which blobs each version uses."""

from django.db import models

from blobs.models import BLOB_ROLE_CHOICES
from dcos_bundle.format import BlobRole

from .fields import ExactJSONField


class Package(models.Model):
    name = models.CharField(max_length=255, unique=True)
    # Publication numbers only grow, also when a version is replaced or removed.
    last_release_version = models.IntegerField(default=-1)
    pinned_version = models.CharField(
        max_length=255, blank=True,
        help_text="The default version, chosen by an operator over the highest one (when the package's version "
                  "scheme changed); empty: the highest version is the default. Removing that version clears it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PackageVersion(models.Model):
    """One published version: the Universe metadata kept whole, plus the fields we index."""

    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=255)
    packaging_version = models.CharField(max_length=8)
    # /repo's releaseVersion is not this: it ranks the versions a cluster sees in the default version's order
    # (packages_app.versions.release_order), so that Cosmos installs the default version.
    release_version = models.PositiveIntegerField(
        help_text="The publication number: grows with every publication of the package (a replace gets a new "
                  "one) and is never reused.",
    )
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    framework = models.BooleanField(default=False)
    min_dcos_release_version = models.CharField(max_length=32, blank=True)
    metadata = ExactJSONField(help_text="The package's Universe metadata, whole, as uploaded.")
    bundle_digest = models.CharField(max_length=71, help_text="sha256 of the uploaded bundle file.")
    content_digest = models.CharField(
        max_length=71, help_text="sha256 of the metadata and every asset and image digest: same content, same value."
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["package__name", "release_version"]
        constraints = [
            models.UniqueConstraint(fields=["package", "version"], name="unique_package_version"),
            models.UniqueConstraint(fields=["package", "release_version"], name="unique_package_release"),
        ]
        indexes = [models.Index(fields=["packaging_version"]), models.Index(fields=["framework"])]

    def __str__(self) -> str:
        return f"{self.package.name} {self.version}"


class VersionBlob(models.Model):
    """A blob used by a published version; a blob's references are its rows here."""

    Role = BlobRole

    version = models.ForeignKey(PackageVersion, on_delete=models.CASCADE, related_name="blob_links")
    # PROTECT: a blob cannot be deleted while a published version references it.
    blob = models.ForeignKey("blobs.Blob", on_delete=models.PROTECT, related_name="references")
    role = models.CharField(max_length=16, choices=BLOB_ROLE_CHOICES)
    name = models.CharField(max_length=1024, blank=True, help_text="File name or image reference it was published as.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "blob", "role", "name"], name="unique_version_blob_use"),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.role} {self.blob_id}"


class PublishedImage(models.Model):
    """An image of a published version, under the repository and tag clients pull it as: what /v2 looks up.

    Written with its version (from the version's manifest uses) and deleted with it. ``repository``
    and ``tag`` are those of the reference the bundle carried (``coordinates.split_reference``); an
    image published by digest has no tag (empty).
    """

    # No index of its own: the unique constraint's index starts with it.
    version = models.ForeignKey(PackageVersion, on_delete=models.CASCADE, related_name="images", db_index=False)
    reference = models.CharField(max_length=1024, help_text="The image reference as published: its blobs' name.")
    repository = models.CharField(max_length=1024)
    tag = models.CharField(max_length=1024, blank=True)
    # PROTECT, as for the version's own use of it.
    manifest = models.ForeignKey("blobs.Blob", on_delete=models.PROTECT, related_name="published_images")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "reference"], name="unique_published_image"),
        ]
        indexes = [models.Index(fields=["repository", "tag"], name="published_image_name_tag")]

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else f"{self.repository}@{self.manifest_id}"
