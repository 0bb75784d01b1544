"""Online backups: the registry's database read in one consistent snapshot, plus every blob the catalogue uses.

A snapshot holds what the registry's behaviour depends on (SECTIONS): the catalogue, clusters and their
rules, API tokens (hashes), users, groups and permissions, and the audit log. What it leaves out, and
why, is NOT_INCLUDED; both are written into every manifest.

A backup target is a directory or ``s3://bucket/prefix``. Every snapshot in it shares one blob area,
so a later (``--incremental``) snapshot copies only the blobs the target lacks::

    blobs/sha256/<ab>/<hex>        the blob area: a blob store with the registry's own layout
    catalogues/<snapshot>.jsonl    one snapshot's records (catalogue, access, audit), one JSON record a line
    manifests/<snapshot>.json      written last: a snapshot without its manifest is incomplete

Snapshot names are UTC times (``20261127T010446123456Z``), so the newest sorts last.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Iterator
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.db.models.functions import Cast
from django.utils import timezone

from access.models import ApiToken, AuditEvent, Cluster, ClusterPackageRule
from blobs.drivers import BlobNotFound, BlobStore, BlobStoreError
from blobs.drivers.transfer import copy_blob
from blobs.models import Blob, StorageBackend
from blobs.store import blob_store, store_from_settings
from dcos_bundle.digests import CHUNK_SIZE, HashingWriter, hash_stream
from dcos_bundle.streams import IterableReader
from operations.models import OperationRun
from operations.runs import recorded_run
from packages_app.models import Package, PackageVersion, VersionBlob

FORMAT = "dcos-registry-backup"
FORMAT_VERSION = 2
# Format 1 held the catalogue only; its snapshots are still restored (and the restore says what they lack).
READABLE_FORMAT_VERSIONS = (1, 2)
BATCH = 500
# The PackageVersion columns a catalogue record carries as they are (metadata travels as text, package by name).
VERSION_FIELDS = ("version", "packaging_version", "release_version", "description", "tags", "framework",
                  "min_dcos_release_version", "bundle_digest", "content_digest", "published_at")
# The columns the access and audit records carry as they are. Clusters, tokens, groups, users and audit events keep
# their ids (the admin's URLs use them); a record refers to another row by name (cluster, group, user) and to a
# permission by what it means, never by id.
CLUSTER_FIELDS = ("id", "name", "description", "dcos_version", "sees_all_packages", "created_at", "updated_at")
RULE_FIELDS = ("package_name", "versions")
TOKEN_FIELDS = ("id", "name", "key_id", "secret_hash", "scope", "created_by", "created_at", "expires_at",
                "last_used_at", "revoked_at")
GROUP_FIELDS = ("id", "name")
USER_FIELDS = ("id", "username", "password", "first_name", "last_name", "email", "is_active", "is_staff",
               "is_superuser", "last_login", "date_joined")
AUDIT_FIELDS = ("id", "created_at", "actor", "action", "target", "details", "remote_addr", "cluster")

# What a snapshot holds, by section; the restore replaces exactly these.
SECTIONS = {
    "catalogue": "packages and versions (metadata byte for byte as stored), the blob records they use, and those "
                 "blobs",
    "clusters": "clusters and their package rules",
    "tokens": "API tokens: the sha256 of each secret (never a secret), scope, cluster, expiry and revocation",
    "users": "users with their password hashes and active, staff and superuser flags; groups; the permissions of "
             "both, named by application, model and codename",
    "audit_log": "the audit log",
}
FORMAT_1_SECTIONS = ("catalogue",)
# What a snapshot leaves out, and why; written into every manifest so that a backup explains itself.
NOT_INCLUDED = {
    "secret_key": "SECRET_KEY is a credential of the deployment and belongs with its other secrets. It signs admin "
                  "sessions and cookies only; token and password hashes do not use it, so a registry restored "
                  "with another key only asks its admin users to log in again.",
    "s3_credentials": "S3 credentials belong to the deployment's settings; a backup names storage by its identity "
                      "(kind and location) only.",
    "staging": "the staging area holds bundles being received or ingested, not yet part of the catalogue.",
    "ingest_jobs_and_upload_sessions": "work in flight: a restored registry starts with none, and a client uploads "
                                       "again what had not been published. A restored version's upload_job is empty.",
    "operation_runs": "the maintenance history of the registry that ran them; the restored registry records its own, "
                      "starting with the restore.",
    "admin_sessions_and_admin_history": "log-ins end with a restore; the admin's 'recent actions' list is a "
                                        "convenience, while the audit log (included) records every change.",
    "login_attempts": "the admin's failed log-ins and lockouts as the rate limit counts them (django-axes) expire "
                      "by themselves; the audit log (included) keeps every failure and lockout.",
    "storage_lock": "recorded in the manifest as information (storage_lock), not restored: a restored registry is "
                    "locked to the storage it is configured with.",
    "unused_blobs": "blobs no version uses, which GC removes anyway.",
}


class BackupError(Exception):
    """A backup that cannot be made or read; the message is the sentence an operator reads."""


class BackupLocation(ABC):
    """The named files of a backup target, beside its blob area."""

    def __init__(self, url: str, blobs: BlobStore):
        self.url = url
        self.blobs = blobs

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A readable file; FileNotFoundError if there is none of that name."""

    @abstractmethod
    def create(self, name: str):
        """A context manager giving a file to write; it appears under ``name`` only when the block succeeds."""

    @abstractmethod
    def names(self, folder: str) -> list[str]:
        """The file names in ``folder``."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Remove a file, if it is there."""

    @abstractmethod
    def open_range(self, name: str, offset: int, length: int) -> BinaryIO:
        """``length`` bytes of a file from ``offset``, streamed; FileNotFoundError if there is none of that name."""

    def snapshots(self) -> list[str]:
        """Complete snapshots (those with a manifest), oldest first."""
        return sorted(name.removesuffix(".json") for name in self.names("manifests") if name.endswith(".json"))


class DirectoryLocation(BackupLocation):
    def __init__(self, url: str, root: Path):
        self.root = root
        super().__init__(url, store_from_settings(root.as_uri()))

    def open(self, name: str) -> BinaryIO:
        return open(self.root / name, "rb")

    @contextmanager
    def create(self, name: str) -> Iterator[BinaryIO]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        try:
            with open(partial, "wb") as file:
                yield file
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def names(self, folder: str) -> list[str]:
        path = self.root / folder
        return [entry.name for entry in path.iterdir() if entry.is_file()] if path.is_dir() else []

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def open_range(self, name: str, offset: int, length: int) -> BinaryIO:
        file = open(self.root / name, "rb")

        def chunks() -> Iterator[bytes]:
            with file:
                file.seek(offset)
                left = length
                while left and (chunk := file.read(min(CHUNK_SIZE, left))):
                    left -= len(chunk)
                    yield chunk

        return IterableReader(chunks())


class S3Location(BackupLocation):
    def __init__(self, url: str, bucket: str, prefix: str):
        super().__init__(url, store_from_settings(url))
        self.bucket = bucket
        self.root = f"{prefix}/" if prefix else ""
        self.client = self.blobs.client

    def open(self, name: str) -> BinaryIO:
        # Downloaded to a local temporary file: the catalogue is read as lines, and a file streams them.
        local = tempfile.TemporaryFile()
        try:
            self.client.download_fileobj(self.bucket, self.root + name, local)
        except ClientError as error:
            local.close()
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(name) from None
            raise
        local.seek(0)
        return local

    @contextmanager
    def create(self, name: str) -> Iterator[BinaryIO]:
        with tempfile.TemporaryFile() as local:
            yield local
            local.seek(0)
            self.client.upload_fileobj(local, self.bucket, self.root + name)

    def remove(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.root + name)

    def open_range(self, name: str, offset: int, length: int) -> BinaryIO:
        if not length:
            return IterableReader(())
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.root + name,
                                              Range=f"bytes={offset}-{offset + length - 1}")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(name) from None
            raise
        return IterableReader(response["Body"].iter_chunks(CHUNK_SIZE))

    def names(self, folder: str) -> list[str]:
        prefix = f"{self.root}{folder}/"
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"][len(prefix):] for page in pages for item in page.get("Contents", [])]


def open_location(url: str, *, create: bool = False) -> BackupLocation:
    """The backup target at ``url``; with ``create`` a directory is made if absent (a bucket never is)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        bucket, prefix = parts.netloc, unquote(parts.path).strip("/")
        if not bucket:
            raise BackupError(f"{url!r} names no bucket: write s3://bucket/prefix.")
        location = S3Location(url, bucket, prefix)
        try:
            location.client.head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as error:
            raise BackupError(f"S3 bucket {bucket!r} does not exist or cannot be reached ({error}); "
                              "create it, or check the S3_* settings.") from None
        return location
    if parts.scheme not in ("", "file"):
        raise BackupError(f"{url!r}: a backup target is a directory or s3://bucket/prefix.")
    root = Path(unquote(parts.path) if parts.scheme else url).resolve()
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BackupError(f"Cannot create the backup directory {root}: {error.strerror}.") from None
    elif not root.is_dir():
        raise BackupError(f"No backup at {url}: {root} is not a directory.")
    elif not os.access(root, os.R_OK | os.X_OK):
        raise BackupError(f"The backup directory {root} is not readable.")
    return DirectoryLocation(url, root)


# -- reading a backup -------------------------------------------------------------------------------------------

def read_manifest(location: BackupLocation, snapshot: str | None = None) -> dict:
    """The manifest of ``snapshot`` (default: the newest), checked to be one this registry reads."""
    snapshots = location.snapshots()
    if not snapshots:
        raise BackupError(f"{location.url} holds no complete backup: there is no manifest in manifests/.")
    if snapshot is None:
        snapshot = snapshots[-1]
    elif snapshot not in snapshots:
        raise BackupError(f"{location.url} has no snapshot {snapshot!r}; it has {', '.join(snapshots)}.")
    name = f"manifests/{snapshot}.json"
    try:
        with location.open(name) as file:
            manifest = json.load(file)
    except (OSError, ValueError) as error:
        raise BackupError(f"The manifest {name} in {location.url} cannot be read: {error}.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{name} in {location.url} is not a registry backup manifest.")
    if manifest.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise BackupError(f"{name} in {location.url} has format version {manifest.get('format_version')!r}; "
                          f"this registry reads format versions "
                          f"{', '.join(str(version) for version in READABLE_FORMAT_VERSIONS)}.")
    if manifest["format_version"] > 1:
        contents = manifest.get("contents")
        included = contents.get("included") if isinstance(contents, dict) else None
        if not isinstance(included, dict) or not included or not set(included) <= set(SECTIONS):
            raise BackupError(f"{name} in {location.url} does not list what it holds as sections this registry "
                              f"knows ({', '.join(SECTIONS)}).")
    return manifest


def snapshot_sections(manifest: dict) -> tuple[str, ...]:
    """The sections (SECTIONS keys) the snapshot holds, in SECTIONS order."""
    if manifest["format_version"] == 1:
        return FORMAT_1_SECTIONS
    included = manifest["contents"]["included"]
    return tuple(section for section in SECTIONS if section in included)


def verify_catalogue(location: BackupLocation, manifest: dict) -> None:
    """Re-hash the snapshot's catalogue file against the manifest."""
    expected = manifest["catalogue"]
    try:
        with location.open(expected["path"]) as file:
            actual, size = hash_stream(file)
    except FileNotFoundError:
        raise BackupError(f"The catalogue {expected['path']} is missing from {location.url}.") from None
    if actual != expected["sha256"] or size != expected["size"]:
        raise BackupError(f"The catalogue {expected['path']} in {location.url} is damaged: it hashes to {actual} "
                          f"({size} bytes), the manifest says {expected['sha256']} ({expected['size']} bytes).")


def catalogue_records(location: BackupLocation, manifest: dict) -> Iterator[dict]:
    """The catalogue's records in file order: blobs, packages, versions, then links (call verify_catalogue first)."""
    with location.open(manifest["catalogue"]["path"]) as file:
        for line in file:
            yield json.loads(line)


def versions_using(location: BackupLocation, manifest: dict, digest: str) -> list[str]:
    """``package version`` of every version in the snapshot that uses the blob."""
    return sorted({f"{record['package']} {record['version']}" for record in catalogue_records(location, manifest)
                   if record["type"] == "link" and record["digest"] == digest})


def open_backup(url: str, snapshot: str | None = None) -> tuple[BackupLocation, dict]:
    """An existing backup and the manifest of its newest (or the named) snapshot."""
    location = open_location(url)
    return location, read_manifest(location, snapshot)


# -- making a backup --------------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class CopyReport:
    """What a backup or a restore carried: the catalogue's size and the blobs it wrote."""

    snapshot: str
    packages: int = 0
    versions: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    blobs_copied: int = 0
    bytes_copied: int = 0
    clusters: int = 0
    tokens: int = 0
    users: int = 0
    groups: int = 0
    audit_events: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    def counts(self) -> dict:
        """For the operation run, whose target already names the location."""
        return {key: value for key, value in asdict(self).items() if key not in ("target", "source")}


@dataclass(kw_only=True)
class BackupReport(CopyReport):
    target: str
    incremental: bool


class _CatalogueWriter(HashingWriter):
    """Writes the catalogue, one JSON record a line, hashing and counting it."""

    def write_record(self, record: dict) -> None:
        self.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")


def backup(target: str, *, incremental: bool = False) -> BackupReport:
    """Write a new snapshot of the registry into ``target`` while uploads and ingest go on."""
    location = open_location(target, create=True)
    source = blob_store()
    if location.blobs.identity == source.identity:
        raise BackupError(f"{target} is the registry's own blob storage; back up to another place.")
    if (existing := location.snapshots()) and not incremental:
        raise BackupError(f"{target} already holds backup {existing[-1]}; add a snapshot to it with --incremental, "
                          "or choose an empty target.")
    # Recorded (and committed) before the snapshot is read: from now on GC deletes no blob.
    with recorded_run(OperationRun.Kind.BACKUP, target=target) as run:
        now = timezone.now()
        report = BackupReport(target=target, snapshot=now.strftime("%Y%m%dT%H%M%S%fZ"), incremental=incremental)
        catalogue_path = f"catalogues/{report.snapshot}.jsonl"
        with location.create(catalogue_path) as file:
            writer = _CatalogueWriter(file)
            blobs, storage_lock = _write_snapshot(writer, report)
        for digest, size in blobs:
            if _copy_from_registry(source, location.blobs, digest, size):
                report.blobs_copied += 1
                report.bytes_copied += size
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "snapshot": report.snapshot,
            "created_at": now.isoformat(), "source_storage": source.identity, "incremental": incremental,
            "counts": {"packages": report.packages, "versions": report.versions, "blobs": report.blobs,
                       "blob_bytes": report.blob_bytes, "clusters": report.clusters, "tokens": report.tokens,
                       "users": report.users, "groups": report.groups, "audit_events": report.audit_events},
            "contents": {"included": SECTIONS, "not_included": NOT_INCLUDED},
            "storage_lock": storage_lock,
            "catalogue": {"path": catalogue_path, "sha256": writer.digest, "size": writer.size},
            "blobs": [{"digest": digest, "size": size} for digest, size in blobs],
        }
        with location.create(f"manifests/{report.snapshot}.json") as file:
            file.write(json.dumps(manifest, indent=1).encode())
        run.summary = report.counts()
    return report


def _copy_from_registry(source: BlobStore, target: BlobStore, digest: str, size: int) -> bool:
    try:
        return copy_blob(source, target, digest, size)
    except BlobNotFound:
        raise BackupError(f"Blob {digest} is missing from the registry's storage ({source.identity}); the backup "
                          "is incomplete (run verify_blobs to find every damaged blob).") from None
    except BlobStoreError as error:
        raise BackupError(f"Blob {digest} in the registry's storage is damaged ({error}); the backup is "
                          "incomplete (run verify_blobs to find every damaged blob).") from None


@contextmanager
def snapshot_transaction():
    """One transaction in which every table is read at one instant."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # PostgreSQL's default (READ COMMITTED) would read each table at a different instant.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _write_snapshot(writer: _CatalogueWriter, report: BackupReport) -> tuple[list[tuple[str, int]], dict | None]:
    """Stream every section into ``writer``, all read at one instant.

    Returns the (digest, size) of every blob the catalogue references, and the storage lock's record.
    """
    with snapshot_transaction():
        blobs = _write_catalogue(writer, report)
        _write_clusters_and_tokens(writer, report)
        _write_users(writer, report)
        report.audit_events = _write_rows(writer, "audit", AuditEvent.objects.order_by("id"), _named(*AUDIT_FIELDS))
        storage_lock = StorageBackend.objects.filter(pk=1).values(
            "kind", "identity", "url", "migrating_to", "locked_at").first()
    return blobs, storage_lock and {name: _jsonable(value) for name, value in storage_lock.items()}


def _write_catalogue(writer: _CatalogueWriter, report: BackupReport) -> list[tuple[str, int]]:
    """The catalogue's records (blobs, packages, versions, links); returns the (digest, size) of every blob."""
    blobs = []
    referenced = Blob.objects.filter(digest__in=VersionBlob.objects.values("blob_id")).order_by("digest")
    for digest, size, media_type in referenced.values_list("digest", "size", "media_type").iterator(BATCH):
        writer.write_record({"type": "blob", "digest": digest, "size": size, "media_type": media_type})
        blobs.append((digest, size))
        report.blob_bytes += size
    for name, last_release, pinned, created, updated in Package.objects.order_by("name").values_list(
            "name", "last_release_version", "pinned_version", "created_at", "updated_at").iterator(BATCH):
        writer.write_record({"type": "package", "name": name, "last_release_version": last_release,
                             "pinned_version": pinned, "created_at": created.isoformat(),
                             "updated_at": updated.isoformat()})
        report.packages += 1
    # The metadata as the database holds it, text not parsed, so that it is restored byte for byte.
    versions = PackageVersion.objects.order_by("package__name", "release_version").annotate(
        metadata_text=Cast("metadata", models.TextField()))
    for version in versions.values(*VERSION_FIELDS, "package__name", "metadata_text").iterator(BATCH):
        writer.write_record({
            "type": "version", "package": version.pop("package__name"), **version,
            "published_at": version["published_at"].isoformat(),
        })
        report.versions += 1
    links = VersionBlob.objects.order_by("version__package__name", "version__version", "blob_id", "role", "name")
    for package, version, digest, role, name in links.values_list(
            "version__package__name", "version__version", "blob_id", "role", "name").iterator(BATCH):
        writer.write_record({"type": "link", "package": package, "version": version, "digest": digest,
                             "role": role, "name": name})
    report.blobs = len(blobs)
    return blobs


def _write_clusters_and_tokens(writer: _CatalogueWriter, report: BackupReport) -> None:
    report.clusters = _write_rows(writer, "cluster", Cluster.objects.order_by("id"), _named(*CLUSTER_FIELDS))
    _write_rows(writer, "cluster_rule", ClusterPackageRule.objects.order_by("cluster__name", "package_name"),
                {"cluster": "cluster__name", **_named(*RULE_FIELDS)})
    report.tokens = _write_rows(writer, "token", ApiToken.objects.order_by("id"),
                                {**_named(*TOKEN_FIELDS), "cluster": "cluster__name"})


# A permission is named by what its content type means, (app_label, model), and its codename: ids differ between
# databases.
PERMISSION = {"app_label": "permission__content_type__app_label", "model": "permission__content_type__model",
              "codename": "permission__codename"}


def _write_users(writer: _CatalogueWriter, report: BackupReport) -> None:
    user_model = get_user_model()
    report.groups = _write_rows(writer, "group", Group.objects.order_by("id"), _named(*GROUP_FIELDS))
    _write_rows(writer, "group_permission", Group.permissions.through.objects.order_by("group__name", "permission_id"),
                {"group": "group__name", **PERMISSION})
    report.users = _write_rows(writer, "user", user_model.objects.order_by("id"), _named(*USER_FIELDS))
    _write_rows(writer, "user_group", user_model.groups.through.objects.order_by("user__username", "group__name"),
                {"user": "user__username", "group": "group__name"})
    _write_rows(writer, "user_permission",
                user_model.user_permissions.through.objects.order_by("user__username", "permission_id"),
                {"user": "user__username", **PERMISSION})


def _named(*names: str) -> dict[str, str]:
    return {name: name for name in names}


def _write_rows(writer: _CatalogueWriter, kind: str, rows: models.QuerySet, fields: dict[str, str]) -> int:
    """Write one ``kind`` record per row; ``fields`` maps each record key to the column (or related column) it reads.

    Returns the number of rows written.
    """
    count = 0
    for values in rows.values_list(*fields.values()).iterator(BATCH):
        writer.write_record({"type": kind, **{key: _jsonable(value) for key, value in zip(fields, values)}})
        count += 1
    return count


def _jsonable(value):
    return value.isoformat() if isinstance(value, datetime) else value
