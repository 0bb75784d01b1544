"""Restoring a backup: every blob copied into the configured store and verified, then the catalogue in one transaction.

A restore that fails leaves no catalogue row and removes the blobs it copied that the registry did
not hold before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby, islice
from operator import itemgetter
from typing import Iterable, Iterator

from django.db import transaction

from blobs.drivers import BlobNotFound, BlobStore, BlobStoreError
from blobs.drivers.transfer import copy_blob
from blobs.models import Blob
from blobs.store import StorageBackendMismatch, blob_store, ensure_backend_lock
from operations.backup import (
    BATCH,
    VERSION_FIELDS,
    BackupError,
    BackupLocation,
    CopyReport,
    catalogue_records,
    open_backup,
    verify_catalogue,
    versions_using,
)
from operations.models import OperationRun
from operations.runs import recorded_run
from packages_app.models import Package, PackageVersion, VersionBlob


@dataclass(kw_only=True)
class RestoreReport(CopyReport):
    source: str
    replaced: bool


def restore(source: str, *, snapshot: str | None = None, force: bool = False) -> RestoreReport:
    """Restore the newest (or the named) snapshot of the backup at ``source``.

    Only into an empty registry, unless ``force``: then the registry's catalogue is replaced by the
    backup's (blobs it held stay, and GC removes those no restored version uses).
    """
    location, manifest = open_backup(source, snapshot)
    verify_catalogue(location, manifest)
    store = blob_store()
    try:
        ensure_backend_lock(store)
    except StorageBackendMismatch as mismatch:
        raise BackupError(f"Refusing to restore: this registry's blobs live in {mismatch.locked.identity}, but "
                          f"STORAGE_URL points at {store.identity}. Set STORAGE_URL back, or move the blobs with "
                          "migrate_storage first.") from None
    if (contents := registry_contents(store)) and not force:
        raise BackupError(f"The registry is not empty ({contents}); restore into an empty registry, or pass "
                          "--force to replace its catalogue with the backup's.")
    with recorded_run(OperationRun.Kind.RESTORE, target=source) as run:
        report = RestoreReport(source=source, snapshot=manifest["snapshot"], replaced=bool(contents))
        copied = []
        try:
            for blob in manifest["blobs"]:
                if _copy_into_registry(location, manifest, store, blob["digest"], blob["size"]):
                    copied.append(blob["digest"])
                    report.blobs_copied += 1
                    report.bytes_copied += blob["size"]
            with transaction.atomic():
                if contents:
                    _clear_catalogue()
                _load_catalogue(location, manifest, report)
        except BaseException:
            for digest in copied:
                store.delete(digest)
            raise
        run.summary = report.counts()
    return report


def registry_contents(store: BlobStore) -> str:
    """What the registry holds, in words; empty if it holds nothing."""
    found = [f"{count} {label}" for label, model in (("packages", Package), ("versions", PackageVersion),
                                                     ("blob records", Blob))
             if (count := model.objects.count())]
    if next(iter(store.iter_blobs()), None) is not None:
        found.append(f"blobs in {store.identity}")
    return ", ".join(found)


def _copy_into_registry(location: BackupLocation, manifest: dict, store: BlobStore, digest: str, size: int) -> bool:
    try:
        return copy_blob(location.blobs, store, digest, size)
    except BlobNotFound:
        problem = "missing from the backup"
    except BlobStoreError as error:
        problem = f"damaged in the backup ({error})"
    users = ", ".join(versions_using(location, manifest, digest)) or "no version"
    raise BackupError(f"Blob {digest} (used by {users}) is {problem}; nothing was restored.")


def _clear_catalogue() -> None:
    VersionBlob.objects.all().delete()
    PackageVersion.objects.all().delete()
    Package.objects.all().delete()


def _batches(records: Iterable[dict]) -> Iterator[list[dict]]:
    records = iter(records)
    while batch := list(islice(records, BATCH)):
        yield batch


def _load_catalogue(location: BackupLocation, manifest: dict, report: RestoreReport) -> None:
    package_ids: dict[str, int] = {}
    version_ids: dict[tuple[str, str], int] = {}
    for kind, records in groupby(catalogue_records(location, manifest), key=itemgetter("type")):
        for batch in _batches(records):
            if kind == "blob":
                Blob.objects.bulk_create([Blob(digest=record["digest"], size=record["size"],
                                               media_type=record["media_type"]) for record in batch],
                                         ignore_conflicts=True)
                report.blobs += len(batch)
                report.blob_bytes += sum(record["size"] for record in batch)
            elif kind == "package":
                packages = Package.objects.bulk_create([
                    # Backups made before default versions could be pinned have no pin.
                    Package(name=record["name"], last_release_version=record["last_release_version"],
                            pinned_version=record.get("pinned_version", ""))
                    for record in batch])
                _keep_times(Package, packages, batch, ("created_at", "updated_at"))
                package_ids.update((package.name, package.pk) for package in packages)
                report.packages += len(batch)
            elif kind == "version":
                versions = PackageVersion.objects.bulk_create([
                    PackageVersion(package_id=package_ids[record["package"]], metadata=_exact_metadata(record),
                                   **{name: record[name] for name in VERSION_FIELDS})
                    for record in batch])
                _keep_times(PackageVersion, versions, batch, ("published_at",))
                version_ids.update(((record["package"], record["version"]), version.pk)
                                   for record, version in zip(batch, versions))
                report.versions += len(batch)
            elif kind == "link":
                VersionBlob.objects.bulk_create([
                    VersionBlob(version_id=version_ids[record["package"], record["version"]],
                                blob_id=record["digest"], role=record["role"], name=record["name"])
                    for record in batch])
            else:
                raise BackupError(f"The catalogue holds a record of unknown type {kind!r}.")


def _keep_times(model, rows: list, records: list[dict], fields: tuple[str, ...]) -> None:
    """Set the times the backup recorded: creating a row stamps it with now (auto_now), updating does not."""
    for row, record in zip(rows, records):
        for name in fields:
            setattr(row, name, datetime.fromisoformat(record[name]))
    model.objects.bulk_update(rows, fields)


def _exact_metadata(record: dict):
    """The metadata, checked to be stored again as exactly the text the backup holds."""
    text = record["metadata_text"]
    value = json.loads(text)
    if PackageVersion._meta.get_field("metadata").get_prep_value(value) != text:
        raise BackupError(f"The metadata of {record['package']} {record['version']} in the backup would not be "
                          "stored byte for byte; the catalogue was not written by this registry.")
    return value
