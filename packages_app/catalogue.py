"""Catalogue operations: what a version consists of, a package's default version, removing a version (changes
are written to the audit log). Plain functions for views, the admin and commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from access import audit
from access.audit import Actor
from access.clusters import EVERYTHING, Visibility
from access.models import AuditEvent
from blobs.models import Blob
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.universe.resource import file_name_of
from packages_app.models import Package, PackageVersion, VersionBlob

from .coordinates import registry_host, resource_url, split_reference
from .versions import default_version, sorted_versions


def find_package(name: str, visibility: Visibility = EVERYTHING) -> Package:
    """A package with at least one published version the caller may see."""
    visible = visibility.versions(PackageVersion.objects.filter(package__name=name))
    package = Package.objects.filter(pk__in=visible.values("package_id")).first()
    if package is None:
        raise RegistryError(ErrorCode.PACKAGE_NOT_FOUND, f"Package [{name}] not found", package=name)
    return package


def find_version(name: str, version: str, visibility: Visibility = EVERYTHING) -> PackageVersion:
    found = visibility.versions(PackageVersion.objects.select_related("package").filter(
        package__name=name, version=version)).first()
    if found is None:
        find_package(name, visibility)
        raise RegistryError(ErrorCode.VERSION_NOT_FOUND, f"Version [{version}] of package [{name}] not found",
                          package=name, version=version)
    return found


def search_packages(visibility: Visibility = EVERYTHING, words: str = "", tag: str = "", framework: bool | None = None,
                    packaging_version: str = "") -> QuerySet[Package]:
    """Packages with at least one version the caller sees that matches: every word in the name, description or
    tags, the whole tag, and the kind. The API's listing and the catalogue page ask the same question here."""
    versions = visibility.versions(PackageVersion.objects.all())
    for word in words.split():
        versions = versions.filter(Q(package__name__icontains=word) | Q(description__icontains=word)
                                   | Q(tags__icontains=word))
    if tag:
        # Tags are JSON lists: match one whole element, quotes included.
        versions = versions.filter(tags__icontains=f'"{tag}"')
    if framework is not None:
        versions = versions.filter(framework=framework)
    if packaging_version:
        versions = versions.filter(packaging_version=packaging_version)
    return Package.objects.filter(pk__in=versions.values("package_id"))


# What a listing shows of a version: never the (large) metadata.
SUMMARY_FIELDS = ("id", "package_id", "version", "release_version", "packaging_version", "description", "tags",
                  "framework", "published_at")


def visible_pin(package: Package, visibility: Visibility = EVERYTHING) -> str:
    """The package's pinned version as the caller sees it: "" when there is none or the caller may not see it."""
    return package.pinned_version if visibility.allows(package.name, package.pinned_version) else ""


def package_summaries(packages: list[Package], visibility: Visibility = EVERYTHING) -> list[dict]:
    """Each package with its versions the caller may see (ordered) and its default version's description,
    tags, kind.

    The default version is the pinned one, else the highest one the caller sees: the one /repo gives
    the highest releaseVersion, so the one Cosmos installs when no version is asked for. Two light
    queries for a whole page, however many versions the packages have: the version numbers first,
    then only the default versions' fields.
    """
    numbers: dict[int, dict[str, int]] = {package.pk: {} for package in packages}
    visible = visibility.versions(PackageVersion.objects.filter(package__in=packages))
    for package_id, number, pk in visible.values_list("package_id", "version", "pk"):
        numbers[package_id][number] = pk
    chosen = {package.pk: default_version(numbers[package.pk], package.pinned_version) for package in packages}
    defaults = PackageVersion.objects.only(*SUMMARY_FIELDS).in_bulk(
        [numbers[package_id][number] for package_id, number in chosen.items() if number is not None]
    )
    summaries = []
    for package in packages:
        default = defaults[numbers[package.pk][chosen[package.pk]]]
        summaries.append({
            "name": package.name, "default_version": default.version, "default_version_id": default.pk,
            "pinned_version": visible_pin(package, visibility) or None,
            "versions": sorted_versions(numbers[package.pk]),
            "description": default.description, "tags": default.tags, "framework": default.framework,
            "packaging_version": default.packaging_version, "updated_at": package.updated_at,
        })
    return summaries


def _locked_package(name: str, visibility: Visibility) -> Package:
    # Locked as publishing and removal lock it: a version cannot disappear while it is being pinned.
    return Package.objects.select_for_update().get(pk=find_package(name, visibility).pk)


def pin_default_version(name: str, version: str, actor: Actor, visibility: Visibility = EVERYTHING) -> str:
    """Make ``version`` the package's default, whatever the version order; answer the pin it replaced ("")."""
    with transaction.atomic():
        package = _locked_package(name, visibility)
        find_version(name, version, visibility)
        previous = package.pinned_version
        package.pinned_version = version
        package.save(update_fields=["pinned_version", "updated_at"])
        audit.record(actor, AuditEvent.Action.DEFAULT_VERSION, name, version=version, previous=previous or None)
    return previous


def unpin_default_version(name: str, actor: Actor, visibility: Visibility = EVERYTHING) -> str:
    """The highest version is the package's default again; answer the pin that was removed ("" for none).

    A pin the caller may not see is not its to remove: for it, there is none (and nothing is logged).
    """
    with transaction.atomic():
        package = _locked_package(name, visibility)
        previous = visible_pin(package, visibility)
        if previous:
            package.pinned_version = ""
            package.save(update_fields=["pinned_version", "updated_at"])
            audit.record(actor, AuditEvent.Action.DEFAULT_VERSION, name, version=None, previous=previous)
    return previous


@dataclass(frozen=True)
class VersionContents:
    assets: list[dict]
    images: list[dict]
    stored_bytes: int


def contents(version: PackageVersion) -> VersionContents:
    links = list(VersionBlob.objects.filter(version=version).select_related("blob").order_by("role", "name"))
    name, number = version.package.name, version.version
    assets = [
        {"url": link.name, "digest": link.blob_id, "size": link.blob.size, "file_name": file_name_of(link.name),
         "download_url": resource_url(name, number, link.blob_id, file_name_of(link.name))}
        for link in links if link.role == VersionBlob.Role.ASSET
    ]
    images = []
    for manifest in (link for link in links if link.role == VersionBlob.Role.MANIFEST):
        repository = split_reference(manifest.name)[0]
        images.append({
            "reference": manifest.name,
            "manifest_digest": manifest.blob_id,
            "pull_reference": f"{registry_host()}/{repository}@{manifest.blob_id}",
            "blobs": [{"digest": link.blob_id, "size": link.blob.size, "role": link.role}
                      for link in links if link.name == manifest.name and link.role != VersionBlob.Role.ASSET],
        })
    total = Blob.objects.filter(digest__in={link.blob_id for link in links}).aggregate(total=Sum("size"))["total"]
    return VersionContents(assets, images, total or 0)


@dataclass(frozen=True)
class Garbage:
    """The blobs a removal left unused, and their total size: space the garbage collector frees later."""

    digests: list[str]
    size: int


def _garbage(digests: set[str]) -> Garbage:
    size = Blob.objects.filter(digest__in=digests).aggregate(total=Sum("size"))["total"]
    return Garbage(sorted(digests), size or 0)


def _remove(version: PackageVersion, actor: Actor) -> Garbage:
    """Delete one version (and its package's pin on it) for ``actor``, logged; return the blobs no other version
    uses any more."""
    package = Package.objects.select_for_update().get(pk=version.package_id)
    digests = set(VersionBlob.objects.filter(version=version).values_list("blob_id", flat=True))
    version.delete()
    if package.pinned_version == version.version:
        package.pinned_version = ""
        package.save(update_fields=["pinned_version", "updated_at"])
    garbage = _garbage(digests - set(VersionBlob.objects.filter(blob_id__in=digests).values_list("blob_id", flat=True)))
    audit.record(actor, AuditEvent.Action.REMOVE_VERSION, str(version), garbage_blobs=len(garbage.digests),
                 garbage_bytes=garbage.size)
    return garbage


def remove_version(version: PackageVersion, actor: Actor) -> Garbage:
    """Remove a published version for ``actor``; return the blobs that no other version uses any more.

    Those blobs are garbage from now on: the garbage collector deletes them after its
    protection window, never while another version or a running ingest needs them.
    """
    # The package row stays, even without versions, so its publication numbers keep growing.
    with transaction.atomic():
        return _remove(version, actor)


def remove_versions(versions: Iterable[PackageVersion], actor: Actor) -> Garbage:
    """Remove several versions at once (all or none); return the blobs no remaining version uses."""
    with transaction.atomic():
        removed = [_remove(version, actor) for version in versions]
    # A blob becomes garbage with the last version that used it: each is in one removal's garbage only.
    return Garbage(sorted(digest for garbage in removed for digest in garbage.digests),
                   sum(garbage.size for garbage in removed))


@dataclass
class BlobUse:
    blob: Blob
    roles: list[str] = field(default_factory=list)
    # Versions outside the removal that use the blob too: they keep it.
    kept_by: list[str] = field(default_factory=list)


@dataclass
class RemovalPlan:
    """What removing some versions would do to their blobs, before anything is removed."""

    versions: list[PackageVersion]
    garbage: list[BlobUse]
    kept: list[BlobUse]

    @property
    def garbage_bytes(self) -> int:
        return sum(use.blob.size for use in self.garbage)


def removal_plan(versions: Iterable[PackageVersion]) -> RemovalPlan:
    """The blobs only these versions use (garbage for GC once they are removed), and those other versions keep."""
    versions = list(versions)
    removed = [version.pk for version in versions]
    uses: dict[str, BlobUse] = {}
    for link in VersionBlob.objects.filter(version_id__in=removed).select_related("blob").order_by("blob_id", "role"):
        use = uses.setdefault(link.blob_id, BlobUse(link.blob))
        if link.role not in use.roles:
            use.roles.append(link.role)
    others = (VersionBlob.objects.filter(blob_id__in=uses).exclude(version_id__in=removed)
              .select_related("version__package").order_by("version__package__name", "version__version"))
    for link in others:
        kept_by = uses[link.blob_id].kept_by
        if str(link.version) not in kept_by:
            kept_by.append(str(link.version))
    return RemovalPlan(
        versions=versions,
        garbage=[use for use in uses.values() if not use.kept_by],
        kept=[use for use in uses.values() if use.kept_by],
    )
