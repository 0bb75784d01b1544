"""Stuck ingest jobs are failed by the reaper, run by a real Celery worker on Redis and PostgreSQL."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from dcos_bundle.errors import ErrorCode
from ingest.models import IngestJob
from ingest.tasks import reap_stuck_jobs
from registry_site.celery import app as celery_app
from tests.factories import IngestJobFactory
from tests.processes import PROJECT_DIR, registry_env, stop, wait_until
from tests.services import redis_url


def make_job(state, started_ago=None, heartbeat_ago=None):
    now = timezone.now()
    return IngestJobFactory(
        state=state,
        started_at=None if started_ago is None else now - started_ago,
        heartbeat_at=None if heartbeat_ago is None else now - heartbeat_ago,
    )


@pytest.mark.django_db
def test_only_running_jobs_without_a_recent_heartbeat_are_failed(settings):
    settings.INGEST_STUCK_AFTER_SECONDS = 600
    lost = make_job("running", started_ago=timedelta(hours=1), heartbeat_ago=timedelta(minutes=11))
    never_beat = make_job("running", started_ago=timedelta(minutes=20))
    alive = make_job("running", started_ago=timedelta(hours=3), heartbeat_ago=timedelta(seconds=5))
    queued = IngestJobFactory(state="queued", bundle_size=1000)
    receiving_for_ages = IngestJobFactory(state="queued")
    IngestJob.objects.filter(pk=receiving_for_ages.pk).update(created_at=timezone.now() - timedelta(hours=1))
    done = make_job("succeeded", started_ago=timedelta(hours=5), heartbeat_ago=timedelta(hours=5))

    assert reap_stuck_jobs() == 3
    receiving_for_ages.refresh_from_db()
    assert (receiving_for_ages.state, receiving_for_ages.error_code) == ("failed", "upload_interrupted")

    for job in (lost, never_beat):
        job.refresh_from_db()
        assert (job.state, job.error_code) == ("failed", ErrorCode.WORKER_LOST)
        assert "600 seconds" in job.error_message and job.finished_at is not None
    for job, state in ((alive, "running"), (queued, "queued"), (done, "succeeded")):
        job.refresh_from_db()
        assert (job.state, job.error_code) == (state, "")


@pytest.mark.redis
@pytest.mark.slow
def test_a_real_worker_reaps_through_redis(postgres_database, tmp_path, use_broker):
    broker = redis_url()
    lost = make_job("running", started_ago=timedelta(hours=2), heartbeat_ago=timedelta(hours=2))
    env = registry_env(tmp_path / "data", DATABASE_URL=postgres_database, CELERY_BROKER_URL=broker)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "registry_site", "worker", "--pool", "solo", "--loglevel", "INFO"],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        use_broker(broker)
        celery_app.control.purge()
        reap_stuck_jobs.delay()
        wait_until(
            lambda: IngestJob.objects.get(pk=lost.pk).state == "failed", timeout=60, what="the worker to reap the job"
        )
    finally:
        stop(worker)
    assert "ingest.reap_stuck_jobs" in worker.stdout.read()
