"""backup and restore: an online snapshot of the catalogue and its blobs, restored identical and verified."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.db.models.functions import Cast

from blobs.models import Blob, StorageBackend
from blobs.store import blob_store
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import IngestJob
from operations.backup import FORMAT_VERSION, catalogue_records, open_location, read_manifest
from operations.models import OperationRun
from operations.verify import verify_blobs
from packages_app.models import Package, PackageVersion, VersionBlob
from tests.bundles import AssetSpec, ImageSpec, make_bundle

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


def empty_registry(settings, storage_url: str):
    """A new registry: no catalogue, no blob records, no storage lock, and a fresh blob store."""
    VersionBlob.objects.all().delete()
    PackageVersion.objects.all().delete()
    Package.objects.all().delete()
    IngestJob.objects.all().delete()
    Blob.objects.all().delete()
    StorageBackend.objects.all().delete()
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
    assert "has format version 99; this registry reads format version 1" in refused()
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
    StorageBackend.objects.create(pk=1, kind="local", identity="local:/elsewhere")
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
    import operations.backup
    from operations.gc import collect

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
