"""migrate_storage moves every blob to a new backend while the registry serves, then switches the lock."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid

import pytest
import requests
from django.core.management import CommandError, call_command

from blobs.models import Blob, StorageBackend
from blobs.store import StorageBackendMismatch, blob_store, ensure_backend_lock, store_from_settings
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest import tasks
from ingest.models import IngestJob
from operations import storage_migration
from operations.models import OperationRun
from operations.storage_migration import migrate_storage
from packages_app.coordinates import resource_path
from packages_app.models import PackageVersion, VersionBlob
from tests.bundles import AssetSpec, ImageSpec, make_bundle

pytestmark = pytest.mark.usefixtures("registry")


def use_storage(settings, url: str):
    settings.STORAGE_URL = url
    blob_store.cache_clear()
    return blob_store()


@pytest.fixture
def s3_settings(settings, s3_bucket):
    _, bucket, connection = s3_bucket
    settings.S3_ENDPOINT_URL = connection["endpoint_url"]
    settings.S3_ACCESS_KEY_ID = connection["access_key_id"]
    settings.S3_SECRET_ACCESS_KEY = connection["secret_access_key"]
    settings.S3_REGION = connection["region"]
    return bucket


def s3_url(bucket: str) -> str:
    return f"s3://{bucket}/migration-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["local-to-s3", "s3-to-local"])
def move(request, settings, tmp_path, s3_settings):
    """(source store, target URL) for both directions; the registry runs on the source."""
    if request.param == "local-to-s3":
        return blob_store(), s3_url(s3_settings)
    return use_storage(settings, s3_url(s3_settings)), (tmp_path / "migrated").as_uri()


def upload(client, tmp_path, version: str, seed: int):
    built = make_bundle(tmp_path / version, version=version,
                        assets=[AssetSpec("payload", "p.tgz", 3000 + seed, seed)],
                        images=[ImageSpec("server", f"example/hello:{version}", [4096, 2048], seed)])
    return client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)


def publish(client, tmp_path, version: str, seed: int):
    response = upload(client, tmp_path, version, seed)
    assert response.status_code == 202, response.content
    assert client.get(response["Location"]).json()["state"] == "succeeded"


def listing(store) -> set[str]:
    return {info.digest for info in store.iter_blobs()}


def sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def assert_catalogue_served(client):
    """Every asset through /resource and every image blob through /v2, byte for byte."""
    links = VersionBlob.objects.select_related("version__package")
    assert links.count() > 0
    for link in links:
        name, version = link.version.package.name, link.version.version
        if link.role == VersionBlob.Role.ASSET:
            response = client.get(resource_path(name, version, link.blob_id, "p.tgz"))
        else:
            response = client.get(f"/v2/example/{name}/blobs/{link.blob_id}")
        if response.status_code == 307:  # on S3 the client is sent to the object itself
            content = requests.get(response["Location"], timeout=30).content
        else:
            assert response.status_code == 200, (link.role, link.blob_id)
            content = b"".join(response.streaming_content)
        assert sha256(content) == link.blob_id


def failing_after(copies: int, monkeypatch):
    """copy_blob that loses its connection after ``copies`` blobs."""
    real, calls = storage_migration.copy_blob, []

    def copy(source, target, digest, size=None):
        if len(calls) == copies:
            raise ConnectionResetError("connection reset by peer")
        calls.append(digest)
        return real(source, target, digest, size)

    monkeypatch.setattr(storage_migration, "copy_blob", copy)
    return calls


def test_an_interrupted_migration_resumes_and_the_new_backend_serves_everything(
        client, tmp_path, settings, monkeypatch, move):
    source, target_url = move
    publish(client, tmp_path, "1.0.0", 1)
    publish(client, tmp_path, "2.0.0", 2)
    unrecorded = source.put(io.BytesIO(b"written by an ingest, not yet recorded")).digest
    before = listing(source)
    assert len(before) == Blob.objects.count() + 1

    copied_first = failing_after(3, monkeypatch)
    with pytest.raises(CommandError, match="ConnectionResetError.*3 blobs were copied so far; run the command "
                                           "again to resume"):
        call_command("migrate_storage", "--to", target_url)
    target = store_from_settings(target_url)
    assert listing(target) == set(copied_first)
    lock = StorageBackend.objects.get()
    assert (lock.identity, lock.migrating_to) == (source.identity, "")
    failed = OperationRun.objects.get()
    assert failed.succeeded is False and failed.target == target.identity and failed.summary["copied"] == 3
    monkeypatch.undo()

    out = io.StringIO()
    call_command("migrate_storage", "--to", target_url, "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["skipped"] == 3 and summary["copied"] == len(before) - 3 and summary["switched"]
    assert summary["passes"] >= 2 and summary["source"] == source.identity
    assert listing(target) == before and unrecorded in before
    # The old backend was only read.
    assert listing(source) == before
    lock = StorageBackend.objects.get()
    assert (lock.kind, lock.identity, lock.url, lock.migrating_to) == (target.kind, target.identity, target_url, "")
    assert lock.locked_at > failed.started_at
    run = OperationRun.objects.filter(kind=OperationRun.Kind.MIGRATE_STORAGE).first()
    assert run.succeeded and run.target == target.identity and run.summary["copied"] == summary["copied"]

    with pytest.raises(StorageBackendMismatch, match=re.escape(f"set STORAGE_URL back to {target_url}.")):
        ensure_backend_lock(source)
    use_storage(settings, target_url)
    assert ensure_backend_lock() == lock
    assert_catalogue_served(client)


def test_progress_is_reported_per_pass(client, tmp_path):
    publish(client, tmp_path, "1.0.0", 1)
    out = io.StringIO()
    call_command("migrate_storage", "--to", (tmp_path / "migrated").as_uri(), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Pass 1: 5 blobs copied (") and "0 already in the target" in lines[0]
    assert lines[-1].startswith("Switched the registry to local:") and "in 3 passes" in lines[-1]
    assert "Restart every web and worker process with STORAGE_URL=file://" in lines[-1]


def test_a_bundle_published_during_the_migration_reaches_the_target(client, tmp_path, settings):
    publish(client, tmp_path, "1.0.0", 1)
    target_url = (tmp_path / "migrated").as_uri()

    def publish_between_passes(event, report):
        if event == "pass" and report.passes == 1:
            publish(client, tmp_path, "2.0.0", 2)

    report = migrate_storage(target_url, wait_seconds=0, progress=publish_between_passes)
    # The second pass copied the new bundle's blobs, the third found nothing new, the fourth ran in the hold.
    assert report.switched and report.passes == 4 and report.copied == Blob.objects.count()
    assert listing(store_from_settings(target_url)) == set(Blob.objects.values_list("digest", flat=True))
    assert PackageVersion.objects.count() == 2
    use_storage(settings, target_url)
    assert_catalogue_served(client)


def test_uploads_wait_for_the_switch_and_old_processes_never_write_to_the_old_backend(
        client, tmp_path, settings, monkeypatch):
    source = blob_store()
    publish(client, tmp_path, "1.0.0", 1)
    # A job uploaded before the migration that a worker only starts after the switch.
    monkeypatch.setattr("ingest.tasks.run_ingest.delay", lambda job_id: None)
    assert upload(client, tmp_path, "2.0.0", 2).status_code == 202
    late_job = IngestJob.objects.get(state=IngestJob.State.QUEUED)
    blobs, stored = Blob.objects.count(), listing(source)
    held, writes = [], []

    def upload_during_hold(event, report):
        if event == "hold":
            response = upload(client, tmp_path, "3.0.0", 3)
            held.append(response.json())
            assert response.status_code == 503

    target_url = (tmp_path / "migrated").as_uri()
    report = migrate_storage(target_url, wait_seconds=0.2, progress=upload_during_hold)
    assert report.switched and report.unfinished_jobs == 1
    assert held[0]["code"] == "storage_migration" and "retry in a minute" in held[0]["message"]
    assert held[0]["details"]["migrating_to"] == store_from_settings(target_url).identity

    # Still configured for the old backend: the door refuses, and so does the store stage of a running job.
    moved = upload(client, tmp_path, "4.0.0", 4)
    assert moved.status_code == 503 and moved.json()["code"] == "storage_moved"
    assert f"Restart this process with STORAGE_URL={target_url}" in moved.json()["message"]
    monkeypatch.setattr(source, "put", lambda *args, **kwargs: writes.append(args))
    tasks.run_ingest(str(late_job.pk))
    late_job.refresh_from_db()
    assert (late_job.state, late_job.error_code) == (IngestJob.State.FAILED, "storage_moved")
    assert writes == [] and Blob.objects.count() == blobs and listing(source) == stored
    assert not late_job.blobs.exists() and PackageVersion.objects.count() == 1


def test_a_blob_written_just_before_the_switch_is_not_recorded(client, tmp_path, monkeypatch):
    source = blob_store()
    real_put, target_url = source.put, (tmp_path / "migrated").as_uri()

    def put_then_migrate(*args, **kwargs):
        # The first write of the job lands while the lock still names this backend; the switch follows at once.
        monkeypatch.setattr(source, "put", real_put)
        written = real_put(*args, **kwargs)
        migrate_storage(target_url, wait_seconds=0)
        return written

    monkeypatch.setattr(source, "put", put_then_migrate)
    # One blob only: its recording is the last step before publication.
    built = make_bundle(tmp_path, assets=[AssetSpec("payload", "p.tgz", 3000, 1)], images=[])
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    job = client.get(response["Location"]).json()
    assert (job["state"], job["error"]["code"]) == ("failed", "storage_moved")
    assert StorageBackend.objects.get().identity == store_from_settings(target_url).identity
    assert not Blob.objects.exists() and not PackageVersion.objects.exists()


def test_a_lingering_hold_is_not_left_behind_by_a_failed_final_phase(client, tmp_path, monkeypatch):
    publish(client, tmp_path, "1.0.0", 1)

    def fail_in_final_phase(event, report):
        if event == "hold":
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        migrate_storage((tmp_path / "migrated").as_uri(), wait_seconds=0, progress=fail_in_final_phase)
    assert StorageBackend.objects.get().migrating_to == ""
    assert upload(client, tmp_path, "2.0.0", 2).status_code == 202


@pytest.mark.parametrize("target, message", [
    ("ftp://example.invalid/blobs", "'ftp://example.invalid/blobs' is not a storage URL"),
    ("SAME", "is the backend the registry already uses"),
    ("file:///proc/registry-blobs", "Cannot write to the target file:///proc/registry-blobs"),
])
def test_bad_targets_are_refused_before_anything_is_copied(target, message, settings):
    with pytest.raises(CommandError, match=message):
        call_command("migrate_storage", "--to", settings.STORAGE_URL if target == "SAME" else target)
    assert not OperationRun.objects.exists()


@pytest.mark.s3
def test_an_unreachable_s3_target_is_refused(s3_settings, settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match=r"Cannot write to the target s3:http://127\.0\.0\.1:9/"):
        call_command("migrate_storage", "--to", s3_url(s3_settings))


def test_a_source_the_registry_is_not_locked_to_is_refused(settings, tmp_path):
    ensure_backend_lock()
    use_storage(settings, (tmp_path / "elsewhere").as_uri())
    with pytest.raises(CommandError, match="STORAGE_URL names local:.*elsewhere, but the registry's blobs live in"):
        call_command("migrate_storage", "--to", (tmp_path / "migrated").as_uri())
