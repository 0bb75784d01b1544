"""Celery tasks of the ingest side: thin wrappers of ``pipeline`` (acknowledged late, idempotent)."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from dcos_bundle.errors import ErrorCode, RegistryError
from ingest import pipeline
from ingest.models import IngestJob


def _send(job_id: str, next_tasks: pipeline.NextTasks) -> None:
    for digest in next_tasks.layers:
        verify_layer.delay(job_id, digest)
    if next_tasks.finish:
        finish_ingest.delay(job_id)


@shared_task(name="ingest.run_ingest")
def run_ingest(job_id: str) -> None:
    _send(job_id, pipeline.run(job_id))


@shared_task(name="ingest.verify_layer")
def verify_layer(job_id: str, digest: str) -> None:
    _send(job_id, pipeline.verify_layer(job_id, digest))


@shared_task(name="ingest.finish_ingest")
def finish_ingest(job_id: str) -> None:
    pipeline.finish(job_id)


def _stuck_cutoff():
    return timezone.now() - timedelta(seconds=settings.INGEST_STUCK_AFTER_SECONDS)


def stuck_jobs() -> QuerySet[IngestJob]:
    """Running jobs with no heartbeat for INGEST_STUCK_AFTER_SECONDS: their worker was lost."""
    cutoff = _stuck_cutoff()
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    return IngestJob.objects.filter(stale, state=IngestJob.State.RUNNING)


@shared_task(name="ingest.reap_stuck_jobs")
def reap_stuck_jobs() -> int:
    """Fail running jobs whose heartbeat stopped, so none stays "running" forever."""
    error = RegistryError(
        ErrorCode.WORKER_LOST,
        f"No progress for over {settings.INGEST_STUCK_AFTER_SECONDS} seconds: the worker running this job was "
        "lost. Retry the job (its bundle is kept for a while) or upload the bundle again.",
    )
    stuck = list(stuck_jobs())
    for job in stuck:
        pipeline.fail(job, error)
    # Still receiving (no size yet) long after it began: the web process serving the upload died.
    interrupted = list(IngestJob.objects.filter(state=IngestJob.State.QUEUED, bundle_size=0,
                                                created_at__lt=_stuck_cutoff()))
    for job in interrupted:
        pipeline.fail(job, RegistryError(ErrorCode.UPLOAD_INTERRUPTED, "The upload of this bundle broke off before it was "
                                       "received whole. Upload it again."))
    return len(stuck) + len(interrupted)
