"""Celery tasks of the ingest side: thin wrappers of ``pipeline`` (acknowledged late, idempotent), and the
periodic ones that keep every job moving: the re-dispatch of lost tasks and the reaper.

An outage of the database or the blob store (``blobs.outages``) makes a pipeline task run again after
1, 2, 4, … seconds (at most INGEST_OUTAGE_BACKOFF_MAX_SECONDS apart), INGEST_OUTAGE_RETRIES times; only
its last attempt fails the job. A task the broker lost (restarted without persistence) or never took
(it was unreachable) is sent again by ``redispatch_jobs`` once its job waited INGEST_REDISPATCH_AFTER_SECONDS.
"""

import logging
from datetime import timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from blobs.outages import OUTAGES
from dcos_bundle.errors import ErrorCode, RegistryError
from ingest import pipeline
from ingest.models import ArrivedLayer, IngestJob
from telemetry import metrics

logger = logging.getLogger(__name__)
BROKER_TIMEOUT_SECONDS = 3


def _pipeline_task(name: str):
    """A task that retries outages with exponential back-off; ``may_retry`` tells the pipeline whether it will."""
    return shared_task(
        name=name, bind=True, autoretry_for=OUTAGES, max_retries=settings.INGEST_OUTAGE_RETRIES,
        retry_backoff=1, retry_backoff_max=settings.INGEST_OUTAGE_BACKOFF_MAX_SECONDS, retry_jitter=False,
    )


def _may_retry(task) -> bool:
    return task.request.retries < task.max_retries


def _send(job_id: str, next_tasks: pipeline.NextTasks, run_task_id: str = "") -> None:
    if next_tasks.run:
        # Under the id of the task that started the job, if one did: the run goes on as that task.
        run_ingest.apply_async((job_id,), task_id=run_task_id or None)
    for digest in next_tasks.layers:
        verify_layer.delay(job_id, digest)
    if next_tasks.finish:
        finish_ingest.delay(job_id)


@_pipeline_task("ingest.run_ingest")
def run_ingest(self, job_id: str) -> None:
    _send(job_id, pipeline.run(job_id, task_id=self.request.id or "", may_retry=_may_retry(self)))


@_pipeline_task("ingest.verify_layer")
def verify_layer(self, job_id: str, digest: str) -> None:
    _send(job_id, pipeline.verify_layer(job_id, digest, may_retry=_may_retry(self)))


@_pipeline_task("ingest.check_arrived_layer")
def check_arrived_layer(self, arrival_id: int) -> None:
    _send(*pipeline.check_arrived_layer(arrival_id, may_retry=_may_retry(self)))


def send_arrival(arrival_id: int) -> None:
    """Hand an arrived layer to the workers; one the broker does not take now is left to its job's own check."""
    try:
        check_arrived_layer.delay(arrival_id)
    except BrokerUnreachable:
        logger.warning("The broker did not take arrived layer %s; its job checks it", arrival_id, exc_info=True)
        ArrivedLayer.objects.filter(pk=arrival_id).update(state=ArrivedLayer.State.REFUSED)


@_pipeline_task("ingest.finish_ingest")
def finish_ingest(self, job_id: str) -> None:
    pipeline.finish(job_id, may_retry=_may_retry(self))


def require_broker() -> None:
    """Refuse (503 ``broker_unavailable``) what would have to be queued while the broker cannot take it."""
    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    except BrokerUnreachable:
        logger.warning("The broker is unreachable: an upload is refused", exc_info=True)
        raise RegistryError(ErrorCode.BROKER_UNAVAILABLE, "The registry cannot reach its task queue, so it cannot hand "
                            "a bundle to its workers now; nothing was queued. Retry in a moment.") from None


def send_run(job_id) -> None:
    """Hand a queued job to the workers; if the broker does not take it now, ``redispatch_jobs`` sends it later."""
    try:
        run_ingest.delay(str(job_id))
    except BrokerUnreachable:
        logger.warning("The broker did not take job %s; it is sent again within %s seconds", job_id,
                       settings.INGEST_REDISPATCH_AFTER_SECONDS + settings.INGEST_SWEEP_INTERVAL_SECONDS, exc_info=True)


def _cutoff(seconds: int):
    return timezone.now() - timedelta(seconds=seconds)


def _silent_since(cutoff) -> Q:
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)


def lost_jobs() -> QuerySet[IngestJob]:
    """Jobs whose next task may be lost: queued with their whole bundle, or running without a heartbeat, and
    not sent to the workers for INGEST_REDISPATCH_AFTER_SECONDS."""
    cutoff = _cutoff(settings.INGEST_REDISPATCH_AFTER_SECONDS)
    not_sent_lately = Q(dispatched_at__lt=cutoff) | Q(dispatched_at__isnull=True, created_at__lt=cutoff)
    waiting = Q(state=IngestJob.State.QUEUED, bundle_size__gt=0)
    silent = Q(state=IngestJob.State.RUNNING) & _silent_since(cutoff)
    return IngestJob.objects.filter(not_sent_lately & (waiting | silent))


@shared_task(name="ingest.redispatch_jobs")
def redispatch_jobs() -> int:
    """Send again the next task of every job that waited too long for it: a queued job's run, a running job's
    pending layers or finish. Each task does nothing if its job has moved on meanwhile."""
    sent = 0
    for job in lost_jobs():
        # One update claims the job: two runs of this task at once send it once.
        if not IngestJob.objects.filter(pk=job.pk, state=job.state, dispatched_at=job.dispatched_at).update(
                dispatched_at=timezone.now()):
            continue
        pending = pipeline.pending_tasks(job) if job.state == IngestJob.State.RUNNING else pipeline.NextTasks(run=True)
        logger.warning("Ingest job %s (%s, stage %s) waited too long for its next task; sending it again (%s)",
                       job.pk, job.state, job.stage,
                       "run" if pending.run else "finish" if pending.finish else f"{len(pending.layers)} layers")
        _send(str(job.pk), pending, job.run_task_id)
        metrics.INGEST_TASKS_RESENT.inc()
        sent += 1
    return sent


def stuck_jobs() -> QuerySet[IngestJob]:
    """Running jobs with no heartbeat for INGEST_STUCK_AFTER_SECONDS: their worker was lost."""
    return IngestJob.objects.filter(_silent_since(_cutoff(settings.INGEST_STUCK_AFTER_SECONDS)),
                                    state=IngestJob.State.RUNNING)


@shared_task(name="ingest.reap_stuck_jobs")
def reap_stuck_jobs() -> int:
    """Fail running jobs whose heartbeat stopped, so none stays "running" forever; finish cut-short releases."""
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
                                                created_at__lt=_cutoff(settings.INGEST_STUCK_AFTER_SECONDS)))
    for job in interrupted:
        pipeline.fail(job, RegistryError(ErrorCode.UPLOAD_INTERRUPTED, "The upload of this bundle broke off before it was "
                                       "received whole. Upload it again."))
    # Ended but still holding claims: an outage of the blob store cut their release short.
    for job in IngestJob.objects.exclude(state__in=IngestJob.UNFINISHED_STATES).filter(blobs__isnull=False).distinct():
        pipeline.resume_release(job)
    return len(stuck) + len(interrupted)
