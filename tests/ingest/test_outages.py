"""Outages during ingest (tasks run in-process): an outage of the database or the blob store is waited out
with retries instead of failing the job; one that outlasts them fails it retryably; a release the blob store
cut short is finished by the reaper; an upload the broker cannot take answers 503 and queues nothing, and a
send that fails after all is left to the re-dispatch."""

from __future__ import annotations

import io

import pytest
from django import db
from django.utils import timezone

from blobs.drivers import BlobStoreUnavailable
from blobs.models import Blob
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest import pipeline, services, tasks
from ingest.models import IngestJob, JobBlob, UploadSession
from packages_app.models import VersionBlob
from registry_site.celery import app as celery_app
from tests.actors import TEST_ACTOR
from tests.bundles import ImageSpec, make_bundle
from tests.factories import BlobFactory, IngestJobFactory, JobBlobFactory, VersionBlobFactory
from tests.processes import free_port
from tests.services import redis_url

pytestmark = pytest.mark.usefixtures("registry")


def upload(client, built):
    return client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)


def failing_first(function, times: int, error: Exception):
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) <= times:
            raise error
        return function(*args, **kwargs)

    return flaky, calls


def assert_nothing_left_over(store):
    assert JobBlob.objects.count() == 0
    assert {blob.digest for blob in store.iter_blobs()} == set(VersionBlob.objects.values_list("blob_id", flat=True))


def test_an_outage_of_the_blob_store_is_waited_out(client, tmp_path, registry, monkeypatch):
    flaky, calls = failing_first(registry.put, 3, BlobStoreUnavailable("put"))
    monkeypatch.setattr(registry, "put", flaky)
    built = make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1", [100_000, 20_000])])
    job = client.get(upload(client, built)["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    assert len(calls) > 3
    assert_nothing_left_over(registry)


def test_an_outage_of_the_database_during_a_layer_is_waited_out(client, tmp_path, registry, monkeypatch):
    flaky, calls = failing_first(pipeline.verify_and_store_layer, 2,
                                 db.OperationalError("server closed the connection unexpectedly"))
    monkeypatch.setattr(pipeline, "verify_and_store_layer", flaky)
    built = make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1", [100_000])])
    job = client.get(upload(client, built)["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    assert len(calls) == 3


def test_an_outage_that_outlasts_the_retries_fails_the_job_retryably(client, tmp_path, registry, monkeypatch):
    real_put = registry.put
    flaky, calls = failing_first(real_put, 10**6, BlobStoreUnavailable("put"))
    monkeypatch.setattr(registry, "put", flaky)
    built = make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1", [100_000])])
    job = client.get(upload(client, built)["Location"]).json()
    assert (job["state"], job["error"]["code"]) == ("failed", "service_unavailable")
    assert "blob store was unavailable" in job["error"]["message"]
    # Each of the task's attempts tried once: the first and INGEST_OUTAGE_RETRIES more.
    assert len(calls) == tasks.verify_layer.max_retries + 1

    monkeypatch.setattr(registry, "put", real_put)
    retried = services.retry_job(IngestJob.objects.get(pk=job["id"]), TEST_ACTOR)
    retried.refresh_from_db()
    assert retried.state == "succeeded", retried.error_message
    assert_nothing_left_over(registry)


def stored_claim(store, job: IngestJob) -> str:
    content = f"a layer of {job.pk}".encode()
    digest = store.put(io.BytesIO(content)).digest
    BlobFactory(digest=digest, size=len(content))
    JobBlobFactory(job=job, digest=digest, size=len(content), stored=True)
    return digest


def test_a_release_the_blob_store_cut_short_is_finished_by_the_reaper(registry, monkeypatch):
    job = IngestJobFactory(state="running", started_at=timezone.now(), heartbeat_at=timezone.now())
    digest = stored_claim(registry, job)
    with monkeypatch.context() as outage:
        outage.setattr(registry, "delete", failing_first(registry.delete, 10**6, BlobStoreUnavailable("delete"))[0])
        with pytest.raises(BlobStoreUnavailable):
            services.cancel_job(job, TEST_ACTOR)
    job.refresh_from_db()
    assert job.state == "cancelled" and job.blobs.exists()

    assert tasks.reap_stuck_jobs() == 0
    assert not job.blobs.exists()
    assert not registry.exists(digest) and not Blob.objects.filter(digest=digest).exists()


def test_the_reaper_keeps_the_bundle_of_a_retryable_failure_and_the_blobs_a_version_uses(registry, settings):
    staged = settings.STAGING_DIR / "kept.dcos"
    staged.write_bytes(b"a bundle")
    failed = IngestJobFactory(state="failed", error_code="service_unavailable", staging_path=str(staged))
    digest = stored_claim(registry, failed)
    VersionBlobFactory(blob=Blob.objects.get(digest=digest), role="layer")

    tasks.reap_stuck_jobs()
    assert not failed.blobs.exists()
    assert staged.exists() and registry.exists(digest)


# --- The broker ---------------------------------------------------------------------------------------------

@pytest.fixture
def broker_down(use_broker):
    """The broker is unreachable and tasks really go to it (not run in-process)."""
    use_broker(f"redis://127.0.0.1:{free_port()}/0")
    celery_app.conf.task_always_eager = False


def open_session(client, built) -> dict:
    size = built.path.stat().st_size
    session = client.post("/api/v1/uploads/", {"size": size, "file_name": built.path.name},
                          content_type="application/json").json()
    response = client.put(session["url"], data=built.path.read_bytes(), content_type="application/octet-stream",
                          HTTP_CONTENT_RANGE=f"bytes 0-{size - 1}/{size}")
    assert response.status_code == 200, response.content
    return session


def assert_broker_unavailable(response, settings):
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    assert response.json()["code"] == "broker_unavailable"


def test_a_commit_the_broker_cannot_take_is_refused_and_can_be_made_again(client, tmp_path, settings, broker_down,
                                                                         use_broker):
    built = make_bundle(tmp_path / "b")
    session = open_session(client, built)
    assert_broker_unavailable(client.post(session["url"] + "commit/", {}, content_type="application/json"), settings)
    assert UploadSession.objects.get(pk=session["id"]).state == "open"
    assert IngestJob.objects.count() == 0

    use_broker(redis_url())
    celery_app.conf.task_always_eager = True
    response = client.post(session["url"] + "commit/", {}, content_type="application/json")
    assert response.status_code == 202
    assert client.get(response["Location"]).json()["state"] == "succeeded"


def test_a_bundle_the_broker_cannot_take_is_refused_before_it_is_read(client, tmp_path, settings, broker_down):
    assert_broker_unavailable(upload(client, make_bundle(tmp_path / "b")), settings)
    assert IngestJob.objects.count() == 0 and list(settings.STAGING_DIR.rglob("*.dcos")) == []


def test_a_send_that_fails_after_the_commit_is_left_to_the_redispatch(client, tmp_path, settings, broker_down,
                                                                   monkeypatch):
    # The broker answered the check, and went away before the job was sent.
    monkeypatch.setattr(tasks, "require_broker", lambda: None)
    response = upload(client, make_bundle(tmp_path / "b"))
    assert response.status_code == 202
    job = IngestJob.objects.get()
    assert job.state == "queued" and job.dispatched_at is not None

    celery_app.conf.task_always_eager = True
    settings.INGEST_REDISPATCH_AFTER_SECONDS = 0
    assert tasks.redispatch_jobs() == 1
    job.refresh_from_db()
    assert job.state == "succeeded", job.error_message
