"""Garbage collection keeps everything a version or an unfinished ingest needs, and nothing else."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from blobs.models import Blob
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from dcos_bundle.sizes import human_size
from ingest.models import IngestJob, UploadSession
from operations.gc import GcReport, collect, collect_blobs
from operations.models import OperationRun
from packages_app.models import PackageVersion
from tests.bundles import AssetSpec, make_bundle
from tests.factories import BlobFactory, IngestJobFactory, JobBlobFactory, OperationRunFactory, UploadSessionFactory
from tests.processes import PROJECT_DIR, manage, registry_env

pytestmark = pytest.mark.usefixtures("registry")
AGO = timezone.now() - timedelta(days=1)
STORE_AN_OLD_AND_A_YOUNG_UNUSED_BLOB = """
import io
from datetime import timedelta
from django.utils import timezone
from blobs.models import Blob
from blobs.store import blob_store
for content, age in ((b"old", timedelta(days=1)), (b"young", timedelta(0))):
    digest = blob_store().put(io.BytesIO(content)).digest
    Blob.objects.create(digest=digest, size=len(content))
    Blob.objects.filter(digest=digest).update(created_at=timezone.now() - age)
"""


def publish(client, tmp_path, version, seed):
    built = make_bundle(tmp_path / version, version=version, assets=[AssetSpec("payload", "p.tgz", 3000, seed)])
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    return built


def age_every_blob_row():
    Blob.objects.update(created_at=AGO)


def stored_blob(store, content: bytes, age=AGO) -> str:
    digest = store.put(io.BytesIO(content)).digest
    BlobFactory(digest=digest, size=len(content))
    Blob.objects.filter(digest=digest).update(created_at=age)
    return digest


def test_unreferenced_blobs_go_and_referenced_ones_stay(client, tmp_path, registry):
    old = publish(client, tmp_path, "1.0.0", 1)
    kept = publish(client, tmp_path, "2.0.0", 2)
    client.delete("/api/v1/packages/hello/versions/1.0.0/")
    age_every_blob_row()
    old_asset, kept_asset = old.manifest.assets[0].digest, kept.manifest.assets[0].digest

    dry = collect(dry_run=True)
    assert dry.blobs == [old_asset] and registry.exists(old_asset)

    report = collect()
    assert report.blobs == [old_asset] and report.blob_bytes == 3000
    assert not registry.exists(old_asset) and not Blob.objects.filter(digest=old_asset).exists()
    version = PackageVersion.objects.get(version="2.0.0")
    for link in version.blob_links.all():
        assert registry.exists(link.blob_id), link.role
    assert registry.exists(kept_asset)


def test_blobs_of_unfinished_jobs_and_young_blobs_are_protected(registry):
    claimed = stored_blob(registry, b"claimed by a running ingest")
    JobBlobFactory(job__state=IngestJob.State.RUNNING, digest=claimed)
    of_failed = stored_blob(registry, b"claimed by a failed ingest")
    JobBlobFactory(job__state=IngestJob.State.FAILED, digest=of_failed)
    young = stored_blob(registry, b"just written", age=timezone.now())
    unrecorded = registry.put(io.BytesIO(b"written, not yet recorded")).digest

    assert collect().blobs == [of_failed]
    for digest in (claimed, young, unrecorded):
        assert registry.exists(digest)


def test_abandoned_staging_and_writes_are_swept(settings, registry):
    abandoned = UploadSessionFactory(size=10, offset=3)
    UploadSession.objects.filter(pk=abandoned.pk).update(updated_at=AGO)
    active = UploadSessionFactory(size=10, offset=3)
    IngestJobFactory(state=IngestJob.State.RUNNING, staging_path=str(settings.STAGING_DIR / "bundles" / "running.dcos"))
    files = {
        "abandoned": settings.STAGING_DIR / "uploads" / f"{abandoned.pk}.part",
        "active": settings.STAGING_DIR / "uploads" / f"{active.pk}.part",
        "running": settings.STAGING_DIR / "bundles" / "running.dcos",
        "left-by-a-failed-job": settings.STAGING_DIR / "bundles" / "failed.dcos",
        "new": settings.STAGING_DIR / "bundles" / "new.dcos",
    }
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        if name != "new":
            os.utime(path, (AGO.timestamp(), AGO.timestamp()))
    killed_write = registry.root / "_tmp" / "upload-killed"
    killed_write.write_bytes(b"half")
    os.utime(killed_write, (AGO.timestamp(), AGO.timestamp()))

    report = collect()
    assert report.abandoned_uploads == [str(abandoned.pk)]
    assert sorted(report.staged_files) == sorted([str(files["abandoned"]), str(files["left-by-a-failed-job"])])
    assert [name for name, path in files.items() if path.exists()] == ["active", "running", "new"]
    assert UploadSession.objects.get(pk=abandoned.pk).state == "cancelled"
    assert report.abandoned_writes == 1 and not killed_write.exists()


def test_gc_command_reports_as_json(registry, capsys):
    digest = stored_blob(registry, b"garbage")
    call_command("gc", "--dry-run", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["blobs"] == [digest] and report["protection_seconds"] == 6 * 3600
    assert (report["held_back_blobs"], report["held_back_bytes"], report["held_back_until"]) == (0, 0, None)
    call_command("gc", "--protection-hours", "0")
    assert "Deleted 1 blobs" in capsys.readouterr().out
    assert not registry.exists(digest)


def test_a_dry_run_says_the_protection_window_holds_back_a_version_removed_soon_after_upload(
        client, tmp_path, registry, capsys):
    publish(client, tmp_path, "1.0.0", 1)
    age_every_blob_row()
    young = publish(client, tmp_path, "2.0.0", 2)
    removed = client.delete("/api/v1/packages/hello/versions/2.0.0/").json()
    # Removed long after its upload, 1.0.0's blobs are not held back.
    client.delete("/api/v1/packages/hello/versions/1.0.0/")
    youngest = max(Blob.objects.filter(digest__in=removed["garbage_blobs"]).values_list("created_at", flat=True))

    report = collect(dry_run=True)
    assert young.manifest.assets[0].digest not in report.blobs and report.blobs
    assert (report.held_back_blobs, report.held_back_bytes) == (len(removed["garbage_blobs"]),
                                                                removed["garbage_bytes"])
    assert report.held_back_until == youngest + timedelta(hours=6)
    assert report.to_json()["held_back_until"] == report.held_back_until.isoformat()

    call_command("gc", "--dry-run")
    out = capsys.readouterr().out
    assert (f"The protection window (6 h: GC_PROTECTION_SECONDS, or --protection-hours) holds back "
            f"{report.held_back_blobs} unused blobs ({human_size(report.held_back_bytes)}, {report.held_back_bytes} "
            f"bytes) stored less than 6 h ago") in out
    assert f"a run after {report.held_back_until:%Y-%m-%d %H:%M:%S} UTC deletes them" in out
    # A run deletes 1.0.0's garbage and keeps what the window holds back; a run without the window deletes that.
    assert collect().blobs == report.blobs
    assert collect(timedelta(0)).blob_bytes == removed["garbage_bytes"]
    assert not registry.exists(young.manifest.assets[0].digest)


@pytest.mark.slow
def test_the_gc_commands_json_is_all_its_output(tmp_path):
    """A real process: a dry run prints the report and nothing else, even on a terminal that merges stdout and
    stderr (`docker exec -t`); a real run logs its line to stderr, never to stdout."""
    env = registry_env(tmp_path / "data")
    manage("migrate", "--no-input", env=env)
    manage("shell", "-c", STORE_AN_OLD_AND_A_YOUNG_UNUSED_BLOB, env=env)

    merged = subprocess.run([sys.executable, "manage.py", "gc", "--dry-run", "--json"], cwd=PROJECT_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, check=True)
    dry = json.loads(merged.stdout)
    assert (len(dry["blobs"]), dry["blob_bytes"], dry["held_back_blobs"], dry["held_back_bytes"]) == (1, 3, 1, 5)

    run = manage("gc", "--json", env=env)
    assert json.loads(run.stdout)["blobs"] == dry["blobs"]
    logged = [json.loads(line) for line in run.stderr.splitlines()]
    assert [line["event"] for line in logged if line["logger"] == "operations.gc"] == [
        "GC deleted 1 blobs (3 bytes), 0 staged files, 0 abandoned uploads, 0 abandoned writes; 1 unused blobs "
        "(5 bytes) are younger than the protection window"]


@pytest.mark.slow
def test_gc_racing_ingest_never_takes_a_blob_a_version_needs(client, tmp_path, registry, postgres_database):
    """Blob collection with no protection window runs in a loop while bundles are ingested: every published blob
    survives (claims and the Blob row lock alone keep them; staging and writes in progress are kept by the window)."""
    stop = threading.Event()
    rounds = []

    def collect_repeatedly():
        try:
            while not stop.is_set():
                collect_blobs(timezone.now(), GcReport(dry_run=False))
                rounds.append(1)
        finally:
            connection.close()

    collector = threading.Thread(target=collect_repeatedly)
    collector.start()
    try:
        for number in range(6):
            publish(client, tmp_path, f"{number}.0.0", number + 10)
    finally:
        stop.set()
        collector.join()
    assert len(rounds) > 1
    for version in PackageVersion.objects.all():
        for link in version.blob_links.all():
            assert registry.exists(link.blob_id), (version.version, link.role)


def test_a_run_is_recorded_for_operators_and_metrics_but_a_dry_run_is_not():
    collect(dry_run=True)
    assert not OperationRun.objects.exists()
    collect()
    run = OperationRun.objects.get()
    assert run.kind == "gc" and run.succeeded is True and run.finished_at is not None
    assert run.summary == {"blobs": 0, "blob_bytes": 0, "staged_files": 0, "abandoned_uploads": 0,
                           "abandoned_writes": 0}


@pytest.mark.parametrize("kind", ["backup", "migrate_storage"])
def test_no_blob_is_collected_while_a_backup_or_migration_copies_blobs(registry, settings, kind, capsys):
    unused = stored_blob(registry, b"unused, but maybe in a running backup's snapshot")
    running = OperationRunFactory(kind=kind)
    report = collect()
    assert report.blobs == [] and registry.exists(unused)
    assert report.blobs_kept_because.startswith(f"{kind} run {running.pk} (started ")
    assert OperationRun.objects.get(kind="gc").summary["blobs_kept_because"] == report.blobs_kept_because
    call_command("gc", "--dry-run")
    assert f"Kept every unused blob: {kind} run {running.pk}" in capsys.readouterr().out

    # A run unfinished for longer than the guard is presumed crashed: it no longer holds GC back.
    OperationRun.objects.filter(pk=running.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.MAINTENANCE_GUARD_SECONDS + 60))
    assert collect().blobs == [unused] and not registry.exists(unused)


def test_finished_maintenance_and_other_runs_do_not_hold_gc_back(registry):
    OperationRunFactory(kind="backup", finished_at=timezone.now(), succeeded=False)
    OperationRunFactory(kind="verify")
    unused = stored_blob(registry, b"unused")
    report = collect()
    assert report.blobs == [unused] and report.blobs_kept_because == ""
