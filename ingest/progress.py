"""Writing a job's progress as its stages run: throttled, additive across workers, with a heartbeat."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ingest.models import IngestJob, JobStage
from telemetry import metrics

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """The job was cancelled while a stage ran; the stage stops and its work is cleaned up."""


def begin_stage(job: IngestJob, stage: str, bytes_total: int = 0) -> None:
    """Make ``stage`` the job's current stage (again, if a task is delivered twice)."""
    now = timezone.now()
    IngestJob.objects.filter(pk=job.pk).update(stage=stage, heartbeat_at=now)
    JobStage.objects.update_or_create(
        job=job, stage=stage, defaults={"bytes_total": bytes_total, "bytes_done": 0, "finished_at": None}
    )
    job.stage = stage


def end_stage(job: IngestJob, stage: str) -> None:
    finished = timezone.now()
    ended = JobStage.objects.filter(job=job, stage=stage)
    ended.update(finished_at=finished, bytes_done=F("bytes_total"))
    # From the stage's first start: a fanned-out stage spans several tasks.
    started = ended.values_list("started_at", flat=True).first()
    if started is not None:
        seconds = (finished - started).total_seconds()
        metrics.INGEST_STAGE_DURATION.labels(stage).observe(seconds)
        logger.info("Ingest stage %s finished in %.1f s", stage, seconds)


class StageProgress:
    """Counts bytes for one stage of an ingest job and writes them at most every INGEST_PROGRESS_INTERVAL seconds.

    Each write adds to the stage's count (several workers share a fanned-out stage), touches the
    job's heartbeat and checks whether the job was cancelled. (The builder's bars are another
    thing: ``dcos_bundle.builder.progress.BuildProgress`` only draws.)
    """

    def __init__(self, job_id, stage: str):
        self.job_id = job_id
        self.stage = stage
        self._pending = 0
        self._last_write = time.monotonic()

    def add(self, count: int) -> None:
        self._pending += count
        if time.monotonic() - self._last_write >= settings.INGEST_PROGRESS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, 0
        self._last_write = time.monotonic()
        if pending:
            JobStage.objects.filter(job_id=self.job_id, stage=self.stage).update(bytes_done=F("bytes_done") + pending)
        touched = IngestJob.objects.filter(pk=self.job_id, state=IngestJob.State.RUNNING).update(
            heartbeat_at=timezone.now()
        )
        if not touched:
            raise JobCancelled(self.job_id)
