"""Restoring a backup: every blob copied into the configured store and verified, then the registry in one transaction.

A restore brings back every section the backup holds (operations.backup.SECTIONS): the catalogue,
clusters, tokens, users and groups, and the audit log. Into an empty database it first creates the
schema. A restore that fails leaves no row of the backup and removes the blobs it copied that the
registry did not hold before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby, islice
from operator import itemgetter
from typing import Callable, Iterable, Iterator

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.migrations.executor import MigrationExecutor

from access import audit
from access.auth import OPERATOR
from access.models import ApiToken, AuditEvent, Cluster, ClusterPackageRule
from blobs.drivers import BlobNotFound, BlobStore, BlobStoreError
from blobs.drivers.transfer import copy_blob
from blobs.models import Blob
from blobs.store import StorageBackendMismatch, blob_store, ensure_backend_lock
from operations.backup import (
    AUDIT_FIELDS,
    BATCH,
    CLUSTER_FIELDS,
    GROUP_FIELDS,
    RULE_FIELDS,
    SECTIONS,
    TOKEN_FIELDS,
    USER_FIELDS,
    VERSION_FIELDS,
    BackupError,
    BackupLocation,
    CopyReport,
    catalogue_records,
    open_backup,
    snapshot_sections,
    verify_catalogue,
    versions_using,
)
from operations.models import OperationRun
from operations.runs import recorded_run
from packages_app.image_index import index_images, manifest_uses
from packages_app.models import Package, PackageVersion, PublishedImage, VersionBlob


@dataclass(kw_only=True)
class RestoreReport(CopyReport):
    source: str
    replaced: bool
    schema_created: bool = False
    # Sections the backup does not hold (a format-1 backup holds only the catalogue): to be created again by hand.
    lacked: list[str] = field(default_factory=list)
    # Permissions of the backup's users and groups that this registry does not define, as app_label.codename.
    permissions_skipped: list[str] = field(default_factory=list)


def restore(source: str, *, snapshot: str | None = None, force: bool = False) -> RestoreReport:
    """Restore the newest (or the named) snapshot of the backup at ``source``.

    Only into an empty registry, unless ``force``: then what the registry holds of each section the
    backup holds is replaced by the backup's (blobs it held stay, and GC removes those no restored
    version uses), except its audit log, which keeps its events and gains the backup's.
    """
    location, manifest = open_backup(source, snapshot)
    verify_catalogue(location, manifest)
    schema_created = create_schema_if_empty()
    store = blob_store()
    try:
        ensure_backend_lock(store)
    except StorageBackendMismatch as mismatch:
        raise BackupError(f"Refusing to restore: this registry's blobs live in {mismatch.locked.identity}, but "
                          f"STORAGE_URL points at {store.identity}. Set STORAGE_URL back, or move the blobs with "
                          "migrate_storage first.") from None
    sections = snapshot_sections(manifest)
    if (contents := registry_contents(store, sections)) and not force:
        raise BackupError(f"The registry is not empty ({contents}); restore into an empty registry, or pass "
                          "--force to replace its contents with the backup's.")
    with recorded_run(OperationRun.Kind.RESTORE, target=source) as run:
        report = RestoreReport(source=source, snapshot=manifest["snapshot"], replaced=bool(contents),
                               schema_created=schema_created,
                               lacked=[section for section in SECTIONS if section not in sections])
        copied = []
        try:
            for blob in manifest["blobs"]:
                if _copy_into_registry(location, manifest, store, blob["digest"], blob["size"]):
                    copied.append(blob["digest"])
                    report.blobs_copied += 1
                    report.bytes_copied += blob["size"]
            with transaction.atomic():
                if contents:
                    _clear(sections)
                _load_records(location, manifest, report)
                _record_restore(report)
        except BaseException:
            for digest in copied:
                store.delete(digest)
            raise
        run.summary = report.counts()
    return report


def create_schema_if_empty() -> bool:
    """Run the migrations on an empty database (True if it did); refuse one whose schema is behind the code."""
    executor = MigrationExecutor(connection)
    if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return False
    if executor.loader.applied_migrations:
        raise BackupError("The database's schema is older than this registry's code; run `manage.py migrate` first "
                          "(a restore creates the schema only in an empty database).")
    call_command("migrate", interactive=False, verbosity=0)
    return True


def _held(section: str) -> tuple[tuple[str, type], ...]:
    """What a registry holds of ``section``, as (words, model); the audit log is never in the way of a restore."""
    return {
        "catalogue": (("packages", Package), ("versions", PackageVersion), ("blob records", Blob)),
        "clusters": (("clusters", Cluster),),
        "tokens": (("tokens", ApiToken),),
        "users": (("users", get_user_model()), ("groups", Group)),
        "audit_log": (),
    }[section]


def registry_contents(store: BlobStore, sections: Iterable[str]) -> str:
    """What the registry holds of ``sections``, in words; empty if it holds nothing."""
    found = [f"{count} {label}" for section in sections for label, model in _held(section)
             if (count := model.objects.count())]
    if "catalogue" in sections and next(iter(store.iter_blobs()), None) is not None:
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


def _clear(sections: Iterable[str]) -> None:
    """Delete what the registry holds of ``sections`` (blob records stay: GC removes those no version uses)."""
    for section in sections:
        if section == "catalogue":
            PublishedImage.objects.all().delete()
            VersionBlob.objects.all().delete()
            PackageVersion.objects.all().delete()
            Package.objects.all().delete()
        elif section == "clusters":
            Cluster.objects.all().delete()
        elif section == "tokens":
            ApiToken.objects.all().delete()
        elif section == "users":
            # A session names its user by id, and the ids now belong to the backup's users: everyone logs in again.
            Session.objects.all().delete()
            get_user_model().objects.all().delete()
            Group.objects.all().delete()


@dataclass(kw_only=True)
class _Loading:
    """The ids, in this database, of what the records name: rows restored so far, and the permissions."""

    permissions: dict[tuple[str, str, str], int]
    # An empty audit log takes the backup's events with their ids; a forced restore appends the ones it lacks.
    keep_audit_ids: bool
    packages: dict[str, int] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    def permission(self, record: dict, report: RestoreReport) -> int | None:
        """The id of the record's permission, found by what it means; None (and noted) if there is none here."""
        key = (record["app_label"], record["model"], record["codename"])
        if key not in self.permissions:
            if (name := f"{record['app_label']}.{record['codename']}") not in report.permissions_skipped:
                report.permissions_skipped.append(name)
            return None
        return self.permissions[key]


def _batches(records: Iterable[dict]) -> Iterator[list[dict]]:
    records = iter(records)
    while batch := list(islice(records, BATCH)):
        yield batch


def _load_records(location: BackupLocation, manifest: dict, report: RestoreReport) -> None:
    loading = _Loading(
        permissions={(app_label, model, codename): pk for app_label, model, codename, pk in Permission.objects
                     .values_list("content_type__app_label", "content_type__model", "codename", "pk")},
        keep_audit_ids=not AuditEvent.objects.exists())
    for kind, records in groupby(catalogue_records(location, manifest), key=itemgetter("type")):
        load = LOADERS.get(kind)
        if load is None:
            raise BackupError(f"The catalogue holds a record of unknown type {kind!r}.")
        for batch in _batches(records):
            load(batch, loading, report)
    # Rows kept their backup's ids; rows created from now on are numbered after them.
    models_with_kept_ids = [Cluster, ApiToken, Group, get_user_model(), AuditEvent]
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), models_with_kept_ids):
            cursor.execute(statement)
    # A backup holds no index of published images: it is derived from the versions' image manifests, as publishing
    # writes it.
    index_images(manifest_uses(VersionBlob.objects.all()).iterator(BATCH))


# -- the catalogue ---------------------------------------------------------------------------------------------

def _load_blobs(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    Blob.objects.bulk_create([Blob(digest=record["digest"], size=record["size"], media_type=record["media_type"])
                              for record in batch], ignore_conflicts=True)
    report.blobs += len(batch)
    report.blob_bytes += sum(record["size"] for record in batch)


def _load_packages(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    packages = Package.objects.bulk_create([
        # Backups made before default versions could be pinned have no pin.
        Package(name=record["name"], last_release_version=record["last_release_version"],
                pinned_version=record.get("pinned_version", "")) for record in batch])
    _keep_times(Package, packages, batch, ("created_at", "updated_at"))
    loading.packages.update((package.name, package.pk) for package in packages)
    report.packages += len(batch)


def _load_versions(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    versions = PackageVersion.objects.bulk_create([
        PackageVersion(package_id=loading.packages[record["package"]], metadata=_exact_metadata(record),
                       **{name: record[name] for name in VERSION_FIELDS})
        for record in batch])
    _keep_times(PackageVersion, versions, batch, ("published_at",))
    loading.versions.update(((record["package"], record["version"]), version.pk)
                            for record, version in zip(batch, versions))
    report.versions += len(batch)


def _load_links(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    VersionBlob.objects.bulk_create([
        VersionBlob(version_id=loading.versions[record["package"], record["version"]], blob_id=record["digest"],
                    role=record["role"], name=record["name"])
        for record in batch])


# -- clusters and tokens ---------------------------------------------------------------------------------------

def _load_clusters(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    clusters = _create(Cluster, batch, CLUSTER_FIELDS)
    loading.clusters.update((cluster.name, cluster.pk) for cluster in clusters)
    report.clusters += len(batch)


def _load_cluster_rules(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    _create(ClusterPackageRule, batch, RULE_FIELDS, cluster_id=lambda record: loading.clusters[record["cluster"]])


def _load_tokens(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    _create(ApiToken, batch, TOKEN_FIELDS,
            cluster_id=lambda record: loading.clusters[record["cluster"]] if record["cluster"] else None)
    report.tokens += len(batch)


# -- users, groups and their permissions -----------------------------------------------------------------------

def _load_groups(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    groups = _create(Group, batch, GROUP_FIELDS)
    loading.groups.update((group.name, group.pk) for group in groups)
    report.groups += len(batch)


def _load_group_permissions(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    Group.permissions.through.objects.bulk_create([
        Group.permissions.through(group_id=loading.groups[record["group"]], permission_id=permission)
        for record in batch if (permission := loading.permission(record, report)) is not None])


def _load_users(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    users = _create(get_user_model(), batch, USER_FIELDS)
    loading.users.update((user.get_username(), user.pk) for user in users)
    report.users += len(batch)


def _load_user_groups(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    through = get_user_model().groups.through
    through.objects.bulk_create([
        through(user_id=loading.users[record["user"]], group_id=loading.groups[record["group"]]) for record in batch])


def _load_user_permissions(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    through = get_user_model().user_permissions.through
    through.objects.bulk_create([through(user_id=loading.users[record["user"]], permission_id=permission)
                                 for record in batch if (permission := loading.permission(record, report)) is not None])


# -- the audit log ---------------------------------------------------------------------------------------------

def _load_audit_events(batch: list[dict], loading: _Loading, report: RestoreReport) -> None:
    report.audit_events += len(batch)
    if loading.keep_audit_ids:
        _create(AuditEvent, batch, AUDIT_FIELDS)
        return
    # A forced restore: the registry's log keeps its events (a restore never erases history). An event of the
    # backup it already holds (same id, time, actor and action: a backup of this registry) is skipped; the others
    # are appended under new ids.
    held = {(pk, created_at, actor, action) for pk, created_at, actor, action in AuditEvent.objects.filter(
        pk__in=[record["id"] for record in batch]).values_list("pk", "created_at", "actor", "action")}
    lacking = [record for record in batch if (record["id"], datetime.fromisoformat(record["created_at"]),
                                              record["actor"], record["action"]) not in held]
    _create(AuditEvent, lacking, tuple(name for name in AUDIT_FIELDS if name != "id"))


def _record_restore(report: RestoreReport) -> None:
    audit.record(OPERATOR.actor(), AuditEvent.Action.RESTORE, report.source, snapshot=report.snapshot,
                 replaced=report.replaced, lacked=report.lacked,
                 counts={name: getattr(report, name) for name in (
                     "packages", "versions", "blobs", "clusters", "tokens", "users", "groups", "audit_events")})


LOADERS: dict[str, Callable[[list[dict], _Loading, RestoreReport], None]] = {
    "blob": _load_blobs,
    "package": _load_packages,
    "version": _load_versions,
    "link": _load_links,
    "cluster": _load_clusters,
    "cluster_rule": _load_cluster_rules,
    "token": _load_tokens,
    "group": _load_groups,
    "group_permission": _load_group_permissions,
    "user": _load_users,
    "user_group": _load_user_groups,
    "user_permission": _load_user_permissions,
    "audit": _load_audit_events,
}


def _create(model: type[models.Model], records: list[dict], fields: tuple[str, ...],
            **related: Callable[[dict], object]) -> list:
    """Create a row per record from its ``fields`` (times parsed) and the columns ``related`` computes from it
    (ids of the rows it names); then give back the times the database stamped at creation."""
    meta = model._meta
    times = {name for name in fields if isinstance(meta.get_field(name), models.DateTimeField)}
    rows = model.objects.bulk_create([
        model(**{name: _time(record[name]) if name in times else record[name] for name in fields},
              **{column: value(record) for column, value in related.items()})
        for record in records])
    stamped = tuple(name for name in times if meta.get_field(name).auto_now or meta.get_field(name).auto_now_add)
    if stamped and rows:
        _keep_times(model, rows, records, stamped)
    return rows


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _keep_times(model, rows: list, records: list[dict], fields: tuple[str, ...]) -> None:
    """Set the times the backup recorded: creating a row stamps it with now (auto_now), an UPDATE does not.

    One statement a batch, joining each row to its times (bulk_update's CASE per row costs ten times more; the
    audit log can be long). A VALUES list's columns are column1, column2… in PostgreSQL and SQLite alike.
    """
    if not rows:
        return
    quote, meta, adapt = connection.ops.quote_name, model._meta, connection.ops.adapt_datetimefield_value
    table = quote(meta.db_table)
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = restored.column{number}"
                            for number, name in enumerate(fields, start=2))
    values = ", ".join(["(" + ", ".join(["%s"] * (1 + len(fields))) + ")"] * len(rows))
    params = [value for row, record in zip(rows, records)
              for value in (row.pk, *(adapt(datetime.fromisoformat(record[name])) for name in fields))]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS restored "
                       f"WHERE {table}.{quote(meta.pk.column)} = restored.column1", params)


def _exact_metadata(record: dict):
    """The metadata, checked to be stored again as exactly the text the backup holds."""
    text = record["metadata_text"]
    value = json.loads(text)
    if PackageVersion._meta.get_field("metadata").get_prep_value(value) != text:
        raise BackupError(f"The metadata of {record['package']} {record['version']} in the backup would not be "
                          "stored byte for byte; the catalogue was not written by this registry.")
    return value
