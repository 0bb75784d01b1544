"""Exporting a selection of the catalogue as a transfer set (``operations.transfer``), each blob once.

Given what the destination holds (its inventory, or the manifest of the last transfer it imported),
the stream carries only the blobs it lacks; the manifest still lists every selected version and
every blob each one uses, so the import can check that nothing is missing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from django.db import models
from django.db.models.functions import Cast
from django.utils import timezone

from access.clusters import EVERYTHING, Visibility, dcos_version_of, find_cluster, visibility_of
from blobs.drivers import BlobNotFound, BlobStoreError
from blobs.drivers.base import VerifyingCopier
from blobs.store import blob_store
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import OCI_INDEX_MEDIA_TYPE, REF_NAME_ANNOTATION, AssetEntry, BlobRole, ImageEntry, Manifest
from dcos_bundle.universe.resource import file_name_of
from dcos_bundle.universe.rules import dcos_version as parse_dcos_version
from dcos_bundle.universe.rules import package_rules, runs_on
from dcos_bundle.version import installed_version
from operations.backup import BackupError, open_location, snapshot_transaction
from operations.models import OperationRun
from operations.runs import recorded_run
from operations.transfer import (
    CHECKSUMS_NAME,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    VOLUME_DIR,
    VolumeWriter,
    checksums_text,
    read_known_blobs,
    write_document,
)
from packages_app.models import PackageVersion, VersionBlob


@dataclass(frozen=True)
class Selection:
    """Which versions an export carries: a cluster's rules or named packages, and a DC/OS version's cutoff."""

    visibility: Visibility = EVERYTHING
    dcos_version: tuple[int, ...] | None = None
    described: tuple[tuple[str, object], ...] = (("all", True),)

    def versions(self) -> list[PackageVersion]:
        chosen = self.visibility.versions(PackageVersion.objects.all()).order_by("package__name", "release_version")
        return [version for version in chosen.select_related("package").annotate(
                    metadata_text=Cast("metadata", models.TextField()))
                if runs_on(version.min_dcos_release_version, self.dcos_version)]


def selection(*, cluster: str | None = None, packages: list[str] = (), dcos_version: str | None = None) -> Selection:
    """A selection from what an operator names: a cluster (its rules and DC/OS version), or packages as
    ``NAME`` or ``NAME=PATTERN,PATTERN`` (the version patterns cluster rules use), optionally a DC/OS version."""
    if cluster and packages:
        raise RegistryError(ErrorCode.INVALID_REQUEST, "Select either a cluster or packages, not both.")
    try:
        dcos = parse_dcos_version(dcos_version) if dcos_version else None
        rules = package_rules(packages)
    except ValueError as error:
        raise RegistryError(ErrorCode.INVALID_REQUEST, str(error)) from None
    if cluster:
        found = find_cluster(cluster)
        return Selection(visibility_of(found), dcos or dcos_version_of(found),
                         (("cluster", cluster), ("dcos_version", dcos_version or found.dcos_version or None)))
    if not packages:
        return Selection(EVERYTHING, dcos, (("all", True), ("dcos_version", dcos_version)))
    return Selection(Visibility(rules), dcos, (("packages", {name: list(patterns) for name, patterns in rules}),
                                                ("dcos_version", dcos_version)))


@dataclass(kw_only=True)
class ExportReport:
    target: str
    transfer: str
    versions: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    blobs_carried: int = 0
    bytes_carried: int = 0
    blobs_left_out: int = 0
    volumes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _transfer_exists(location) -> bool:
    if location.names(VOLUME_DIR):
        return True
    for name in (MANIFEST_NAME, CHECKSUMS_NAME):
        try:
            location.open(name).close()
            return True
        except FileNotFoundError:
            pass
    return False


def export(target: str, *, chosen: Selection = Selection(), since: str | None = None,
           volume_size: int | None = None, run: OperationRun | None = None) -> ExportReport:
    """Write a transfer set of the ``chosen`` versions into ``target``, leaving out the blobs ``since`` names."""
    # Recorded (and committed) before the catalogue is read: from now on GC deletes no blob.
    with recorded_run(OperationRun.Kind.EXPORT, target=target, run=run) as run:
        if volume_size is not None and volume_size < 1:
            raise RegistryError(ErrorCode.INVALID_REQUEST, "A volume holds at least one byte.", field="volume_size")
        known = read_known_blobs(since) if since else set()
        try:
            location = open_location(target, create=True)
        except BackupError as error:
            raise RegistryError(ErrorCode.TRANSFER_INVALID, str(error), target=target) from None
        if _transfer_exists(location):
            raise RegistryError(ErrorCode.TRANSFER_EXISTS, f"{target} already holds a transfer set; export into an "
                                "empty directory or prefix.", target=target)
        now = timezone.now()
        report = ExportReport(target=target, transfer=now.strftime("%Y%m%dT%H%M%S%fZ"))
        with snapshot_transaction():
            versions, blobs = _version_records(chosen)
        carried = []
        writer = VolumeWriter(location, volume_size)
        try:
            for digest, (size, media_type) in sorted(blobs.items()):
                if digest in known:
                    report.blobs_left_out += 1
                    continue
                carried.append({"digest": digest, "size": size, "media_type": media_type, "offset": writer.offset})
                _copy_into_stream(digest, size, writer)
                report.blobs_carried += 1
                report.bytes_carried += size
            writer.close()
        except BaseException:
            writer.abort()
            raise
        report.versions, report.blobs = len(versions), len(blobs)
        report.blob_bytes = sum(size for size, _ in blobs.values())
        report.volumes = [volume["name"] for volume in writer.volumes]
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "transfer": report.transfer,
            "created_at": now.isoformat(), "source_storage": blob_store().identity,
            "selection": dict(chosen.described), "since": since,
            "counts": {"versions": report.versions, "blobs": report.blobs, "blob_bytes": report.blob_bytes,
                       "blobs_carried": report.blobs_carried, "bytes_carried": report.bytes_carried},
            "volume_size": volume_size, "volumes": writer.volumes, "blobs": carried, "versions": versions,
        }
        checksum = write_document(location, MANIFEST_NAME, manifest)
        with location.create(CHECKSUMS_NAME) as file:
            file.write(checksums_text([(checksum, MANIFEST_NAME)] + [
                (volume["sha256"], volume["name"]) for volume in writer.volumes]))
        run.summary = report.to_json()
    return report


def _copy_into_stream(digest: str, size: int, writer: VolumeWriter) -> None:
    """One blob from the registry's store into the stream, re-hashed on the way."""
    copier = VerifyingCopier()
    try:
        with blob_store().open(digest) as stream:
            for chunk in copier.chunks(stream):
                writer.write(chunk)
        copier.verify(digest, size)
    except BlobNotFound:
        raise RegistryError(ErrorCode.BLOB_STORE_UNSTABLE, f"Blob {digest} is missing from the registry's storage; "
                            "the export is incomplete (run verify_blobs to find every damaged blob).",
                            digest=digest) from None
    except BlobStoreError as error:
        raise RegistryError(ErrorCode.BLOB_STORE_UNSTABLE, f"Blob {digest} in the registry's storage is damaged "
                            f"({error}); the export is incomplete (run verify_blobs to find every damaged blob).",
                            digest=digest) from None


def _version_records(chosen: Selection) -> tuple[list[dict], dict[str, tuple[int, str]]]:
    """A record per selected version (read in one snapshot), and every blob they use: digest -> (size, media type)."""
    versions = chosen.versions()
    uses = defaultdict(list)
    blobs: dict[str, tuple[int, str]] = {}
    links = VersionBlob.objects.filter(version__in=[version.pk for version in versions]).order_by(
        "blob_id", "role", "name")
    for version_id, digest, role, name, size, media_type in links.values_list(
            "version_id", "blob_id", "role", "name", "blob__size", "blob__media_type").iterator(2000):
        uses[version_id].append({"digest": digest, "size": size, "media_type": media_type, "role": role,
                                 "name": name})
        blobs[digest] = (size, media_type)
    return [_version_record(version, uses[version.pk]) for version in versions], blobs


def _version_record(version: PackageVersion, uses: list[dict]) -> dict:
    """What a version needs to be ingested on the other side: its metadata as stored, and the bundle's manifest
    and image index rebuilt from the blobs it was published with (None for a metadata-only version)."""
    assets = [AssetEntry(use["name"], use["digest"], use["size"], file_name_of(use["name"]))
              for use in uses if use["role"] == BlobRole.ASSET]
    images = [use for use in uses if use["role"] == BlobRole.MANIFEST]
    bundle_manifest = image_index = None
    if uses:
        bundle_manifest = Manifest(
            name=version.package.name, version=version.version,
            built_by={"name": "dcos-registry export", "version": installed_version()},
            built_at=version.published_at.isoformat(), assets=assets,
            images=[ImageEntry(use["name"], use["digest"]) for use in images]).to_json()
    if images:
        image_index = {"schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": [
            {"mediaType": use["media_type"], "digest": use["digest"], "size": use["size"],
             "annotations": {REF_NAME_ANNOTATION: use["name"]}} for use in images]}
    return {
        "package": version.package.name, "version": version.version, "release_version": version.release_version,
        "content_digest": version.content_digest, "bundle_digest": version.bundle_digest,
        "published_at": version.published_at.isoformat(), "metadata_text": version.metadata_text,
        "manifest": bundle_manifest, "image_index": image_index, "blobs": uses,
    }

