"""Celery tasks of the ingest side."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import IngestJob

STUCK_JOB_ERROR = "worker_lost"


@shared_task(name="ingest.reap_stuck_jobs")
def reap_stuck_jobs() -> int:
    """Fail running jobs whose heartbeat stopped, so none stays "running" forever."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.INGEST_STUCK_AFTER_SECONDS)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    return IngestJob.objects.filter(stale, state=IngestJob.State.RUNNING).update(
        state=IngestJob.State.FAILED,
        error_code=STUCK_JOB_ERROR,
        error_message=(
            f"No progress for over {settings.INGEST_STUCK_AFTER_SECONDS} seconds: the worker running this job "
            "was lost. Upload the bundle again."
        ),
        finished_at=now,
    )
