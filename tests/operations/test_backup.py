"""backup and restore: an online snapshot of the catalogue and its blobs, restored identical and verified."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.management import create_contenttypes
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.db.models.functions import Cast
from django.test import Client

import operations.backup
from access.models import ApiToken, AuditEvent, Cluster, ClusterPackageRule
from blobs.models import Blob, StorageBackend
from blobs.store import blob_store, ensure_backend_lock
from dcos_bundle.digests import digest_of
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import IngestJob
from operations.backup import FORMAT_VERSION, NOT_INCLUDED, SECTIONS, catalogue_records, open_location, read_manifest
from operations.gc import collect
from operations.models import OperationRun
from operations.verify import verify_blobs
from packages_app.models import Package, PackageVersion, VersionBlob
from tests.access.test_clusters import cluster_repo
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.factories import StorageBackendFactory

pytestmark = pytest.mark.usefixtures("registry")


def publish(client, tmp_path, name: str, version: str, seed: int):
    built = make_bundle(tmp_path / f"{name}-{version}", name=name, version=version,
                        assets=[AssetSpec("payload", f"{name}.tgz", 3000, seed)],
                        images=[ImageSpec("server", f"example/{name}:{version}", [4096], seed)])
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    return built


def catalogue_view(client) -> dict:
    """Everything the registry serves about its catalogue, and the metadata text as stored."""
    repo = client.get("/repo")
    assert repo.status_code == 200
    view = {"repo": repo.json(), "packages": client.get("/api/v1/packages/").json(), "versions": {}}
    for package in Package.objects.order_by("name"):
        view["packages_" + package.name] = client.get(f"/api/v1/packages/{package.name}/").json()
        for version in package.versions.order_by("version"):
            detail = client.get(f"/api/v1/packages/{package.name}/versions/{version.version}/").json()
            detail.pop("upload_job")  # ingest history is not part of a backup
            view["versions"][package.name, version.version] = detail
    view["metadata_text"] = list(PackageVersion.objects.order_by("package__name", "version").annotate(
        text=Cast("metadata", models.TextField())).values_list("package__name", "version", "text"))
    return view


def empty_registry(settings, storage_url: str, *, keep_access: bool = False):
    """A new registry: no catalogue, no blob records, no storage lock, and a fresh blob store; unless
    ``keep_access``, no clusters, tokens, users, groups, sessions or audit log either."""
    VersionBlob.objects.all().delete()
    PackageVersion.objects.all().delete()
    Package.objects.all().delete()
    IngestJob.objects.all().delete()
    Blob.objects.all().delete()
    StorageBackend.objects.all().delete()
    if not keep_access:
        for model in (ApiToken, Cluster, Session, User, Group, AuditEvent):
            model.objects.all().delete()
    settings.STORAGE_URL = storage_url
    blob_store.cache_clear()
    return blob_store()


def run_json(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def blob_file(root, digest: str):
    return root / "blobs" / "sha256" / digest[7:9] / digest[7:]


def test_backup_to_a_directory_restores_an_identical_catalogue(client, tmp_path, settings):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    publish(client, tmp_path, "hello", "2.0.0", 2)
    publish(client, tmp_path, "world", "0.1.0", 3)
    pinned = client.put("/api/v1/packages/hello/default-version/", {"version": "1.0.0"},
                        content_type="application/json")
    assert pinned.json()["pinned_version"] == "1.0.0"
    before = catalogue_view(client)
    used = set(VersionBlob.objects.values_list("blob_id", flat=True))
    target = tmp_path / "backup"

    report = run_json("backup", "--to", str(target))
    assert (report["packages"], report["versions"], report["blobs"]) == (2, 3, len(used))
    assert report["blobs_copied"] == len(used)
    manifest = json.loads((target / "manifests" / f"{report['snapshot']}.json").read_bytes())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["source_storage"] == blob_store().identity
    assert {blob["digest"] for blob in manifest["blobs"]} == used
    assert (target / manifest["catalogue"]["path"]).stat().st_size == manifest["catalogue"]["size"]

    empty_registry(settings, (tmp_path / "restored").as_uri())
    restored = run_json("restore", "--from", str(target))
    assert (restored["packages"], restored["versions"], restored["blobs"]) == (2, 3, len(used))
    assert restored["blobs_copied"] == len(used) and restored["replaced"] is False
    assert catalogue_view(client) == before
    assert verify_blobs().healthy
    assert StorageBackend.objects.get().identity == blob_store().identity
    runs = OperationRun.objects.filter(kind__in=["backup", "restore"]).values_list("kind", "succeeded", "summary")
    assert {(kind, succeeded, summary["versions"]) for kind, succeeded, summary in runs} == {
        ("backup", True, 3), ("restore", True, 3)}


@pytest.mark.s3
def test_backup_to_s3_restores_into_s3_storage(client, tmp_path, settings, s3_bucket):
    _, bucket, s3 = s3_bucket
    settings.S3_ENDPOINT_URL, settings.S3_ACCESS_KEY_ID = s3["endpoint_url"], s3["access_key_id"]
    settings.S3_SECRET_ACCESS_KEY, settings.S3_REGION = s3["secret_access_key"], s3["region"]
    publish(client, tmp_path, "hello", "1.0.0", 1)
    before = catalogue_view(client)
    target = f"s3://{bucket}/backup-{uuid.uuid4().hex[:8]}"

    assert run_json("backup", "--to", target)["versions"] == 1
    empty_registry(settings, f"s3://{bucket}/registry-{uuid.uuid4().hex[:8]}")
    assert run_json("restore", "--from", target)["versions"] == 1
    assert catalogue_view(client) == before
    assert verify_blobs().healthy

    with pytest.raises(CommandError, match="S3 bucket 'no-such-bucket-.*' does not exist"):
        call_command("backup", "--to", f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/backup")


def test_a_corrupt_blob_fails_the_restore_naming_it_and_leaves_nothing(client, tmp_path, settings):
    built = publish(client, tmp_path, "hello", "1.0.0", 1)
    publish(client, tmp_path, "world", "0.1.0", 2)
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target))
    damaged = built.manifest.assets[0].digest
    blob_file(target, damaged).write_bytes(b"bit rot")

    store = empty_registry(settings, (tmp_path / "restored").as_uri())
    with pytest.raises(CommandError, match=f"Blob {damaged} \\(used by hello 1.0.0\\) is damaged in the backup"):
        call_command("restore", "--from", str(target))
    assert not (Package.objects.exists() or PackageVersion.objects.exists() or Blob.objects.exists())
    assert list(store.iter_blobs()) == []
    assert OperationRun.objects.filter(kind="restore").get().succeeded is False

    blob_file(target, damaged).unlink()
    with pytest.raises(CommandError, match=f"Blob {damaged} .* is missing from the backup"):
        call_command("restore", "--from", str(target))
    assert list(store.iter_blobs()) == [] and not Package.objects.exists()


def test_unusable_backups_are_refused_with_a_reason(client, tmp_path, settings):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    target = tmp_path / "backup"
    snapshot = run_json("backup", "--to", str(target))["snapshot"]
    manifest_path = target / "manifests" / f"{snapshot}.json"
    manifest = json.loads(manifest_path.read_bytes())
    empty_registry(settings, (tmp_path / "restored").as_uri())

    def refused(source=str(target)) -> str:
        with pytest.raises(CommandError) as error:
            call_command("restore", "--from", source)
        return str(error.value)

    assert "is not a directory" in refused(str(tmp_path / "absent"))
    assert "holds no complete backup" in refused(str(tmp_path))
    catalogue = target / manifest["catalogue"]["path"]
    catalogue.write_bytes(catalogue.read_bytes().replace(b"hello", b"hallo"))
    assert "is damaged: it hashes to" in refused()
    manifest_path.write_text(json.dumps({**manifest, "format_version": 99}))
    assert "has format version 99; this registry reads format versions 1, 2" in refused()
    manifest_path.write_text(json.dumps({**manifest, "contents": {"included": {"catalogue": "", "secrets": ""}}}))
    assert "does not list what it holds as sections this registry knows" in refused()
    manifest_path.write_text("{not json")
    assert f"The manifest manifests/{snapshot}.json" in refused()
    with pytest.raises(CommandError, match="has no snapshot 'nope'"):
        call_command("restore", "--from", str(target), "--snapshot", "nope")
    assert not Package.objects.exists()


def test_a_registry_that_is_not_empty_is_refused_and_force_replaces_its_catalogue(client, tmp_path, settings):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    before = catalogue_view(client)
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target))
    publish(client, tmp_path, "world", "0.1.0", 2)

    with pytest.raises(CommandError, match="The registry is not empty \\(2 packages, 2 versions, .*--force"):
        call_command("restore", "--from", str(target))
    assert Package.objects.count() == 2

    report = run_json("restore", "--from", str(target), "--force")
    assert report["replaced"] is True and report["blobs_copied"] == 0
    assert catalogue_view(client) == before
    assert verify_blobs().healthy


def test_a_restore_respects_the_storage_lock(client, tmp_path, settings):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target))
    empty_registry(settings, (tmp_path / "restored").as_uri())
    StorageBackendFactory(pk=1, kind="local", identity="local:/elsewhere")
    with pytest.raises(CommandError, match="Refusing to restore: this registry's blobs live in local:/elsewhere"):
        call_command("restore", "--from", str(target))


def test_incremental_backups_copy_only_new_blobs_and_restore_takes_the_newest(client, tmp_path, settings):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    target = tmp_path / "backup"
    first = run_json("backup", "--to", str(target))
    with pytest.raises(CommandError, match="already holds backup .*--incremental"):
        call_command("backup", "--to", str(target))
    old_blobs = set(VersionBlob.objects.values_list("blob_id", flat=True))
    publish(client, tmp_path, "hello", "2.0.0", 2)
    new_blobs = set(VersionBlob.objects.values_list("blob_id", flat=True)) - old_blobs
    assert new_blobs

    second = run_json("backup", "--to", str(target), "--incremental")
    assert second["blobs_copied"] == len(new_blobs) and second["blobs"] == len(old_blobs | new_blobs)
    assert sorted(path.stem for path in (target / "manifests").iterdir()) == [first["snapshot"], second["snapshot"]]

    empty_registry(settings, (tmp_path / "restored").as_uri())
    assert run_json("restore", "--from", str(target))["versions"] == 2
    older = run_json("restore", "--from", str(target), "--snapshot", first["snapshot"], "--force")
    assert older["versions"] == 1 and list(PackageVersion.objects.values_list("version", flat=True)) == ["1.0.0"]


def test_a_backup_taken_while_ingest_runs_is_consistent(client, tmp_path, postgres_database):
    """Backups run in a loop while versions are published: every snapshot's versions have all their blobs."""
    target = tmp_path / "backup"
    publish(client, tmp_path, "hello", "0.0.1", 100)
    stop, failures = threading.Event(), []

    def back_up_repeatedly():
        try:
            while not stop.is_set():
                call_command("backup", "--to", str(target), "--incremental", stdout=StringIO())
        except Exception as error:  # noqa: BLE001  (reported by the main thread)
            failures.append(error)
        finally:
            connection.close()

    backer = threading.Thread(target=back_up_repeatedly)
    backer.start()
    try:
        for number in range(4):
            publish(client, tmp_path, "hello", f"1.0.{number}", number + 10)
    finally:
        stop.set()
        backer.join()
    assert not failures
    call_command("backup", "--to", str(target), "--incremental", stdout=StringIO())
    location = open_location(str(target))
    snapshots = location.snapshots()
    assert len(snapshots) > 1
    for snapshot in snapshots:
        manifest = read_manifest(location, snapshot)
        listed = {blob["digest"] for blob in manifest["blobs"]}
        records = list(catalogue_records(location, manifest))
        versions = {(r["package"], r["version"]) for r in records if r["type"] == "version"}
        linked = {(r["package"], r["version"]) for r in records if r["type"] == "link"}
        assert versions == linked, snapshot
        for record in records:
            if record["type"] == "link":
                assert record["digest"] in listed and location.blobs.exists(record["digest"])
    assert len(versions) == 5  # the newest snapshot, taken after the last publish


def test_gc_during_a_backup_keeps_the_blobs_of_its_snapshot(client, tmp_path, monkeypatch):
    """A version removed after the snapshot was read, then GC with no protection window: the backup is whole."""
    removed = publish(client, tmp_path, "hello", "1.0.0", 1).manifest.assets[0].digest
    publish(client, tmp_path, "hello", "2.0.0", 2)
    gc_reports = []
    copy_blob = operations.backup.copy_blob

    def copy_after_removal_and_gc(*args, **kwargs):
        if not gc_reports:
            assert client.delete("/api/v1/packages/hello/versions/1.0.0/").status_code == 200
            gc_reports.append(collect(timedelta(0)))
        return copy_blob(*args, **kwargs)

    monkeypatch.setattr(operations.backup, "copy_blob", copy_after_removal_and_gc)
    report = run_json("backup", "--to", str(tmp_path / "backup"))
    assert report["versions"] == 2 and gc_reports[0].blobs == []
    assert gc_reports[0].blobs_kept_because.startswith("backup run ")
    assert open_location(str(tmp_path / "backup")).blobs.exists(removed)
    # Once the backup is done, GC takes what no version uses any more.
    assert removed in collect(timedelta(0)).blobs


def test_verify_blobs_repairs_missing_and_corrupt_blobs_from_a_backup(client, tmp_path, registry, capsys):
    built = publish(client, tmp_path, "hello", "1.0.0", 1)
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target))
    lost, damaged = built.manifest.assets[0].digest, VersionBlob.objects.filter(role="layer").get().blob_id
    registry.delete(lost)
    blob_file(registry.root, damaged).write_bytes(b"bit rot")

    report = run_json("verify_blobs", "--repair-from", str(target))
    assert report["missing"] == [lost] and [item["digest"] for item in report["corrupt"]] == [damaged]
    assert sorted(report["repaired"]) == sorted([lost, damaged]) and report["unrepairable"] == []
    assert verify_blobs().healthy

    # A blob the backup never had cannot be repaired: the command says so and fails.
    newer = publish(client, tmp_path, "hello", "2.0.0", 2).manifest.assets[0].digest
    registry.delete(newer)
    with pytest.raises(SystemExit) as exit_status:
        call_command("verify_blobs", "--repair-from", str(target))
    assert exit_status.value.code == 1
    assert f"unrepairable {newer}: not in the backup" in capsys.readouterr().out

    with pytest.raises(CommandError, match="holds no complete backup"):
        call_command("verify_blobs", "--repair-from", str(tmp_path))


# -- the whole registry: clusters, tokens, users and groups, the audit log ------------------------------------------

ROOT_PASSWORD = "a-root-password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_access(client) -> dict[str, str]:
    """Clusters prod (sees everything) and edge (hello only), a read token for each, a write token and a revoked
    one; a superuser, and a staff user whose group may change and view clusters. Returns the tokens' plaintexts."""
    for fields in ({"name": "prod", "description": "production"},
                   {"name": "edge", "sees_all_packages": False, "rules": [{"package_name": "hello"}]}):
        assert client.post("/api/v1/clusters/", data=fields, content_type="application/json").status_code == 201
    tokens = {}
    for name, scope, cluster in (("prod", "read", "prod"), ("edge", "read", "edge"), ("ci", "write", ""),
                                 ("old", "read", "")):
        response = client.post("/api/v1/tokens/", data={"name": name, "scope": scope, "cluster": cluster},
                               content_type="application/json")
        assert response.status_code == 201, response.content
        tokens[name] = response.json()["token"]
    assert client.delete(f"/api/v1/tokens/{key_id(tokens['old'])}/").status_code == 200
    User.objects.create_superuser("root", "root@example.invalid", ROOT_PASSWORD)
    managers = Group.objects.create(name="release managers")
    managers.permissions.add(*Permission.objects.filter(content_type__app_label="access",
                                                        codename__in=["change_cluster", "view_cluster"]))
    alice = User.objects.create_user("alice", "alice@example.invalid", "another-password", is_staff=True)
    alice.groups.add(managers)
    alice.user_permissions.add(Permission.objects.get(content_type__app_label="packages_app", codename="view_package"))
    return tokens


def key_id(token: str) -> str:
    return token.split("_")[1]


def access_view() -> dict:
    """Clusters, tokens, users, groups and the audit log as the database holds them (ids and times included),
    and what each user may do."""
    return {
        "clusters": list(Cluster.objects.order_by("id").values()),
        "rules": list(ClusterPackageRule.objects.order_by("package_name").values(
            "cluster__name", "package_name", "versions")),
        "tokens": list(ApiToken.objects.order_by("id").values()),
        "users": list(User.objects.order_by("id").values()),
        "groups": list(Group.objects.order_by("id").values()),
        "memberships": sorted(User.groups.through.objects.values_list("user__username", "group__name")),
        "may": {user.username: sorted(user.get_all_permissions()) for user in User.objects.all()},
        "audit": list(AuditEvent.objects.order_by("id").values()),
    }


def renumber_content_types(app_label: str) -> None:
    """Give the app's content types, and so its permissions, new ids: as another database numbers them."""
    ContentType.objects.filter(app_label=app_label).delete()
    ContentType.objects.clear_cache()
    create_contenttypes(apps.get_app_config(app_label), verbosity=0)
    create_permissions(apps.get_app_config(app_label), verbosity=0)


def test_a_restore_brings_back_clusters_tokens_users_and_the_audit_log(client, tmp_path, settings):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    publish(client, tmp_path, "world", "0.1.0", 2)
    tokens = create_access(client)
    edge_repo = cluster_repo(Client(headers=bearer(tokens["edge"])), "edge")
    assert edge_repo.status_code == 200
    before = access_view()
    target = tmp_path / "backup"
    locked = ensure_backend_lock()  # as the web and worker processes do when they start

    report = run_json("backup", "--to", str(target))
    assert (report["clusters"], report["tokens"], report["users"], report["groups"]) == (2, 5, 2, 1)
    assert report["audit_events"] == len(before["audit"]) > 0
    manifest_path = target / "manifests" / f"{report['snapshot']}.json"
    manifest = json.loads(manifest_path.read_bytes())
    assert manifest["contents"] == {"included": SECTIONS, "not_included": NOT_INCLUDED}
    assert {"secret_key", "s3_credentials", "staging", "ingest_jobs_and_upload_sessions"} <= set(NOT_INCLUDED)
    assert manifest["storage_lock"] == {"kind": "local", "identity": locked.identity, "url": "", "migrating_to": "",
                                        "locked_at": locked.locked_at.isoformat()}
    written = manifest_path.read_text() + (target / manifest["catalogue"]["path"]).read_text()
    assert not any(token.split("_", 2)[2] in written for token in tokens.values()), "a token's secret was written"

    empty_registry(settings, (tmp_path / "restored").as_uri())
    # The restoring database numbers content types, and so permissions, its own way; and lacks one permission.
    renumber_content_types("access")
    Permission.objects.get(content_type__app_label="access", codename="view_cluster").delete()
    restored = run_json("restore", "--from", str(target))
    assert (restored["clusters"], restored["tokens"], restored["users"], restored["groups"]) == (2, 5, 2, 1)
    assert restored["permissions_skipped"] == ["access.view_cluster"] and restored["lacked"] == []

    after = access_view()
    restore_event = after["audit"].pop()
    assert (restore_event["action"], restore_event["actor"], restore_event["target"]) == (
        "restore", "user:manage.py", str(target))
    assert restore_event["details"]["snapshot"] == report["snapshot"]
    for permissions in before["may"].values():  # alice's, through her group, and the superuser's
        permissions.remove("access.view_cluster")
    assert after == before

    # What those rows are for: the cluster's token reads its repository as before, the revoked one stays revoked,
    # and new rows are numbered after the restored ones.
    assert cluster_repo(Client(headers=bearer(tokens["edge"])), "edge").content == edge_repo.content
    refused = Client(headers=bearer(tokens["old"])).get("/api/v1/packages/")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    created = client.post("/api/v1/clusters/", data={"name": "new"}, content_type="application/json")
    assert created.status_code == 201
    assert Cluster.objects.get(name="new").pk > max(cluster["id"] for cluster in before["clusters"])
    assert AuditEvent.objects.get(action="cluster_create", target="new").pk > restore_event["id"]


def test_a_forced_restore_replaces_access_and_keeps_the_audit_log(client, tmp_path):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    create_access(client)
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target), stdout=StringIO())
    backed_up = list(AuditEvent.objects.order_by("id").values())
    # After the backup: a cluster, a token, a user who logged in; and two events the log no longer has.
    client.post("/api/v1/clusters/", data={"name": "staging"}, content_type="application/json")
    late = client.post("/api/v1/tokens/", data={"name": "late", "scope": "write"}, content_type="application/json")
    Client().force_login(User.objects.create_user("mallory", password="mallory-password"))
    later = list(AuditEvent.objects.filter(id__gt=backed_up[-1]["id"]).order_by("id").values())
    assert len(later) == 2 and Session.objects.exists()
    AuditEvent.objects.filter(id__in=[event["id"] for event in backed_up[:2]]).delete()

    with pytest.raises(CommandError, match="not empty \\(.*, 3 clusters, 6 tokens, 3 users, 1 groups, "):
        call_command("restore", "--from", str(target))
    assert run_json("restore", "--from", str(target), "--force")["replaced"] is True

    assert sorted(Cluster.objects.values_list("name", flat=True)) == ["edge", "prod"]
    assert sorted(User.objects.values_list("username", flat=True)) == ["alice", "root"]
    assert not Session.objects.exists()
    refused = Client(headers=bearer(late.json()["token"])).get("/api/v1/packages/")
    assert refused.status_code == 401
    # The log keeps what it had, gains the backup's events it had lost, and records the restore.
    events = list(AuditEvent.objects.order_by("created_at", "id").values())
    assert events.pop()["action"] == "restore"
    assert [drop_id(event) for event in events] == [drop_id(event) for event in backed_up + later]
    assert [event["id"] for event in events[2:]] == [event["id"] for event in backed_up[2:] + later]


def drop_id(row: dict) -> dict:
    return {key: value for key, value in row.items() if key != "id"}


def as_format_1(target, snapshot: str) -> None:
    """Rewrite a snapshot as the first format had it: the catalogue's records only, no contents or storage lock."""
    manifest_path = target / "manifests" / f"{snapshot}.json"
    manifest = json.loads(manifest_path.read_bytes())
    catalogue = target / manifest["catalogue"]["path"]
    kept = b"".join(line for line in catalogue.read_bytes().splitlines(keepends=True)
                    if json.loads(line)["type"] in ("blob", "package", "version", "link"))
    catalogue.write_bytes(kept)
    del manifest["contents"], manifest["storage_lock"]
    manifest.update(
        format_version=1,
        counts={key: manifest["counts"][key] for key in ("packages", "versions", "blobs", "blob_bytes")},
        catalogue={**manifest["catalogue"], "sha256": digest_of(hashlib.sha256(kept).hexdigest()), "size": len(kept)})
    manifest_path.write_text(json.dumps(manifest, indent=1))


def test_a_backup_of_the_first_format_restores_its_catalogue_and_says_what_it_lacks(client, tmp_path, settings):
    publish(client, tmp_path, "hello", "1.0.0", 1)
    before = catalogue_view(client)
    target = tmp_path / "backup"
    as_format_1(target, run_json("backup", "--to", str(target))["snapshot"])
    # The clusters, tokens and users the registry has are no reason to refuse: such a backup does not replace them.
    empty_registry(settings, (tmp_path / "restored").as_uri(), keep_access=True)

    out, err = StringIO(), StringIO()
    call_command("restore", "--from", str(target), stdout=out, stderr=err)
    assert "Restored snapshot" in out.getvalue()
    assert "The backup does not hold clusters, tokens, users, audit_log (it was made by an older registry)" in (
        err.getvalue())
    assert catalogue_view(client) == before
    lacked = ["clusters", "tokens", "users", "audit_log"]
    assert OperationRun.objects.get(kind="restore").summary["lacked"] == lacked
    assert AuditEvent.objects.get(action="restore").details["lacked"] == lacked
