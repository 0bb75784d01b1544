"""GET /metrics against real ingest, the real disk, the real Redis broker, and processes sharing one
multiprocess directory."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from blobs.models import Blob
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import IngestJob
from ingest.tasks import reap_stuck_jobs
from operations.models import OperationRun
from operations.runs import recorded_run
from packages_app.models import VersionBlob
from registry_site import metrics
from registry_site.celery import app as celery_app
from telemetry.metrics import MULTIPROC_ENV
from tests.bundles import make_bundle
from tests.factories import IngestJobFactory
from tests.ingest.test_worker_e2e import start_worker
from tests.processes import PROJECT_DIR, free_port, registry_env, stop, wait_until
from tests.services import redis_url

STAGES = ["receive", "inspect", "validate", "verify_images", "store", "publish"]


def parse(text: str) -> dict[tuple, float]:
    """Every sample as {(name, (label, value), ...): value}."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def sample(samples, name, **labels) -> float:
    return samples.get((name, *sorted(labels.items())), 0.0)


def upload(client, path):
    response = client.post("/api/v1/bundles/", data=path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202, response.content
    return IngestJob.objects.get(pk=response.json()["id"])


@pytest.mark.usefixtures("registry")
def test_metrics_follow_real_ingest_jobs(client, tmp_path, settings):
    before = scrape(client)
    first = make_bundle(tmp_path / "a", name="hello")
    job = upload(client, first.path)
    assert job.state == "succeeded", job.error_message
    after = scrape(client)

    assert sample(after, "registry_ingest_bundle_bytes_total") - sample(before, "registry_ingest_bundle_bytes_total") \
        == first.path.stat().st_size
    assert sample(after, "registry_ingest_jobs", state="succeeded") == 1
    assert sample(after, "registry_ingest_jobs", state="running") == 0
    for stage in STAGES:
        count = "registry_ingest_stage_duration_seconds_count"
        assert sample(after, count, stage=stage) - sample(before, count, stage=stage) == 1, stage
    finished = {"outcome": "succeeded", "error_code": ""}
    assert sample(after, "registry_ingest_jobs_finished_total", **finished) \
        - sample(before, "registry_ingest_jobs_finished_total", **finished) == 1
    assert sample(after, "registry_blobs_stored") == Blob.objects.count() > 0
    assert sample(after, "registry_storage_used_bytes") == sum(Blob.objects.values_list("size", flat=True))
    uploads = {"method": "POST", "route": "api/v1/bundles/", "status": "202", "cluster": ""}
    assert sample(after, "registry_http_requests_total", **uploads) \
        - sample(before, "registry_http_requests_total", **uploads) == 1
    # Scrapes are not counted among the requests (refused requests to /metrics are).
    assert not [key for key in after if ("route", "metrics") in key and ("status", "200") in key]

    # A second package sharing the first one's asset and image: its blobs are checked, not written again.
    second = make_bundle(tmp_path / "b", name="other")
    job = upload(client, second.path)
    assert job.state == "succeeded", job.error_message
    shared = set(VersionBlob.objects.filter(version__package__name="hello").values_list("blob_id", flat=True)) \
        & set(VersionBlob.objects.filter(version__package__name="other").values_list("blob_id", flat=True))
    assert shared
    deduplicated = scrape(client)
    assert sample(deduplicated, "registry_blob_deduplicated_bytes_total") \
        - sample(after, "registry_blob_deduplicated_bytes_total") \
        == sum(Blob.objects.filter(digest__in=shared).values_list("size", flat=True))

    # A failed job is counted under its error code.
    settings.INGEST_MAX_MEMBERS = 1
    job = upload(client, make_bundle(tmp_path / "c", name="third").path)
    assert (job.state, job.error_code) == ("failed", "too_many_members")
    failed = scrape(client)
    assert sample(failed, "registry_ingest_jobs_finished_total", outcome="failed", error_code="too_many_members") \
        - sample(deduplicated, "registry_ingest_jobs_finished_total", outcome="failed",
                 error_code="too_many_members") == 1
    assert sample(failed, "registry_ingest_jobs", state="failed") == 1


@pytest.mark.django_db
def test_stuck_jobs_and_last_maintenance_runs(client, settings):
    assert ("registry_operation_last_success_timestamp_seconds", ("operation", "backup")) not in scrape(client)
    with recorded_run(OperationRun.Kind.BACKUP) as backup:
        pass
    with pytest.raises(RuntimeError), recorded_run(OperationRun.Kind.GC):
        raise RuntimeError("store unavailable")
    long_ago = timezone.now() - timedelta(hours=1)
    IngestJobFactory(state="running", stage="store", started_at=long_ago, heartbeat_at=long_ago)
    settings.INGEST_STUCK_AFTER_SECONDS = 600

    samples = scrape(client)
    backup.refresh_from_db()
    assert sample(samples, "registry_operation_last_success_timestamp_seconds", operation="backup") \
        == pytest.approx(backup.finished_at.timestamp())
    # A failed run is no success: the GC series stays absent.
    assert ("registry_operation_last_success_timestamp_seconds", ("operation", "gc")) not in samples
    assert sample(samples, "registry_ingest_stuck_jobs") == 1
    assert sample(samples, "registry_ingest_running_jobs", stage="store") == 1


@pytest.mark.usefixtures("registry")
def test_low_disk_flag_flips_at_the_threshold(client, settings):
    samples = scrape(client)
    places = {"data_dir", "blob_store"}
    assert {key[1][1] for key in samples if key[0] == "registry_disk_free_bytes"} == places
    assert all(sample(samples, "registry_disk_low", place=place) == 0 for place in places)

    settings.DISK_FREE_THRESHOLD_BYTES = 2**62
    samples = scrape(client)
    assert all(sample(samples, "registry_disk_low", place=place) == 1 for place in places)
    assert sample(samples, "registry_disk_free_threshold_bytes") == 2**62


@pytest.mark.redis
@pytest.mark.django_db
def test_queue_depth_of_the_redis_broker(client, use_broker):
    use_broker(redis_url())
    celery_app.control.purge()
    assert sample(scrape(client), "registry_broker_queue_messages", queue="celery") == 0
    for _ in range(3):
        reap_stuck_jobs.delay()  # no worker runs: the tasks wait in the queue
    samples = scrape(client)
    assert sample(samples, "registry_broker_up") == 1
    assert sample(samples, "registry_broker_queue_messages", queue="celery") == 3
    celery_app.control.purge()


@pytest.mark.django_db
def test_a_broker_outage_is_a_gauge_not_a_failed_scrape(client, use_broker):
    use_broker("redis://127.0.0.1:1/0")  # nothing listens there
    samples = scrape(client)
    assert sample(samples, "registry_broker_up") == 0
    assert not [key for key in samples if key[0] == "registry_broker_queue_messages"]
    assert sample(samples, "registry_blobs_stored") == 0  # the rest of the scrape is there


@pytest.mark.django_db
def test_metrics_endpoint_is_not_in_the_api_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/v1/bundles/" in schema["paths"]
    assert not [path for path in schema["paths"] if "metrics" in path]


WRITER = """
from telemetry import metrics
for _ in range({count}):
    metrics.count_request("GET", "health", 200, 0.01)
metrics.INGEST_BUNDLE_BYTES.inc({count} * 1000)
"""


@pytest.mark.django_db
def test_processes_sharing_a_multiprocess_directory_add_up(tmp_path, monkeypatch):
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, MULTIPROC_ENV: str(directory), "PYTHONPATH": str(PROJECT_DIR)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER.format(count=count)], cwd=PROJECT_DIR, env=env)
               for count in (3, 5)]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]

    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    samples = parse(metrics.exposition().decode())
    assert sample(samples, "registry_http_requests_total", method="GET", route="health", status="200",
                  cluster="") == 8
    assert sample(samples, "registry_http_request_duration_seconds_count", method="GET", route="health") == 8
    assert sample(samples, "registry_ingest_bundle_bytes_total") == 8000
    # The state gauges are there too, read from the database.
    assert samples[("registry_ingest_jobs", ("state", "queued"))] == 0


@pytest.mark.slow
@pytest.mark.redis
def test_a_worker_serves_its_processes_metrics_on_its_own_port(postgres_database, use_broker, tmp_path):
    broker = redis_url()
    use_broker(broker)
    celery_app.control.purge()
    env = registry_env(tmp_path / "worker-data", DATABASE_URL=postgres_database, CELERY_BROKER_URL=broker)

    # Without a directory its pool processes share, the worker would serve counts of none of them.
    refused = start_worker({**env, "WORKER_METRICS_PORT": str(free_port())})
    assert refused.wait(timeout=60) != 0
    assert "needs PROMETHEUS_MULTIPROC_DIR" in refused.stdout.read()

    directory = tmp_path / "metrics"
    directory.mkdir()
    port = free_port()
    worker = start_worker({**env, "WORKER_METRICS_PORT": str(port), MULTIPROC_ENV: str(directory)})
    try:
        long_ago = timezone.now() - timedelta(hours=2)
        IngestJobFactory(state="running", stage="store", started_at=long_ago, heartbeat_at=long_ago)
        reap_stuck_jobs.delay()  # runs in a pool process, which fails the job
        lost = ("registry_ingest_jobs_finished_total", ("error_code", "worker_lost"), ("outcome", "failed"))

        def scraped():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                samples = parse(response.read().decode())
            return samples if lost in samples else None

        samples = wait_until(scraped, timeout=60, what="the worker's metrics to count the reaped job")
        assert samples[lost] == 1
        # The state gauges are the web's to serve, not every worker's.
        assert not [key for key in samples if key[0] == "registry_ingest_jobs"]
    finally:
        stop(worker)
