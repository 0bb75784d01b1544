"""The ingest pipeline: a staged bundle becomes a published version, or a failed job that left nothing.

Three kinds of task drive it (see ``tasks.py``, which sends the ``NextTasks`` each step returns), each idempotent, so a task delivered twice
(a worker died, acks are late) redoes or skips work but never doubles it:

- ``run``: receive, inspect, validate, then plan the images and fan out one task per layer;
- ``verify_layer``: one layer checked and stored in a single pass; the task that finishes the
  last layer hands over to ``finish`` (a database update decides which one does); layers checked
  while the upload still arrived (``arrivals``) are taken as they are, or awaited;
- ``finish``: store the assets and image documents, then publish in one transaction.

A job that fails or is cancelled releases what it held: the blobs it claimed that no published
version and no other unfinished job uses, and its staged bundle, unless the failure says nothing
against the bundle (``RETRYABLE_ERRORS``): then the file stays for a retry, until GC sweeps it.

An outage of the database or the blob store (``blobs.outages``) does not fail a job while its task
may still retry: the step raises it, and the task runs again after a back-off. Only the last
attempt fails the job (``service_unavailable``, which keeps the bundle for a retry). A task that
was lost (a broker restarted empty, a worker killed) is sent again by ``tasks.redispatch_jobs``:
``pending_tasks`` says which.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from access.principals import check_may_publish
from blobs.outages import OUTAGES, unavailable_component
from blobs.store import blob_store
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import BlobRole
from dcos_bundle.reader import BundleReader
from ingest import arrivals, staging
from ingest.models import ArrivedLayer, IngestJob, JobBlob
from ingest.progress import JobCancelled, StageProgress, begin_stage, end_stage
from ingest.stages.inspect import InspectLimits, inspect_bundle
from ingest.stages.publish import existing_outcome, find_version, publish
from ingest.stages.receive import check_bundle_digest
from ingest.stages.store import drop_unneeded, store_documents_and_assets
from ingest.stages.validate import BundlePlan, validate_bundle
from ingest.stages.verify_images import check_declared_diff_ids, plan_images, verify_and_store_layer
from telemetry import metrics

logger = logging.getLogger(__name__)
Stage = IngestJob.Stage
UNFINISHED = IngestJob.UNFINISHED_STATES

# Failures of the registry, not of the bundle: the same bundle may well succeed when retried.
RETRYABLE_ERRORS = frozenset({ErrorCode.INTERNAL_ERROR, ErrorCode.WORKER_LOST, ErrorCode.BLOB_STORE_UNSTABLE,
                              ErrorCode.SERVICE_UNAVAILABLE})


@dataclass(frozen=True)
class NextTasks:
    """What a step leaves to other tasks (``tasks.py`` sends them): layers to verify, or the finish.

    ``run``: the first step again, for a job whose run task was lost (see ``pending_tasks``).
    """

    layers: tuple[str, ...] = ()
    finish: bool = False
    run: bool = False


NO_TASKS = NextTasks()


def inspect_limits() -> InspectLimits:
    return InspectLimits(
        max_members=settings.INGEST_MAX_MEMBERS,
        max_member_bytes=settings.INGEST_MAX_MEMBER_BYTES,
        max_total_bytes=settings.INGEST_MAX_TOTAL_BYTES,
        max_ratio=settings.INGEST_MAX_COMPRESSION_RATIO,
    )


def _running(job_id) -> IngestJob | None:
    job = IngestJob.objects.filter(pk=job_id).first()
    return job if job is not None and job.state == IngestJob.State.RUNNING else None


@contextmanager
def _job_logs(job: IngestJob):
    """Every log line of the job's tasks names it, and its package and version once validation knows them."""
    with structlog.contextvars.bound_contextvars(
        job_id=str(job.pk), package=job.package_name or None, version=job.version or None
    ):
        yield


@contextmanager
def _job_errors(job: IngestJob, may_retry: bool):
    """Turn whatever stops a stage into the job's end: failed with a reason, or released after a cancel.

    An outage is raised to the task instead while it ``may_retry`` (the step is idempotent, so the
    retry redoes it), and ends the job only on the last attempt.
    """
    try:
        yield
    except JobCancelled:
        release(job)
    except RegistryError as error:
        fail(job, error)
    except OUTAGES as error:
        if may_retry:
            metrics.INGEST_OUTAGE_RETRIES.labels(unavailable_component(error)).inc()
            raise
        logger.warning("Ingest job %s gives up waiting for an outage to end", job.pk, exc_info=True)
        # A connection the outage broke is not reused to write the failure (a new one is opened).
        close_old_connections()
        component = unavailable_component(error)
        fail(job, RegistryError(ErrorCode.SERVICE_UNAVAILABLE, f"The registry's {component} was unavailable for "
                                "longer than the job waits for it. Retry the job: its bundle is kept."),
             internal_cause=f"{type(error).__name__}: {error}; caused by {error.__cause__!r}")
    except Exception as error:  # every failure ends the job cleanly, and is logged whole
        logger.exception("Ingest job %s failed unexpectedly", job.pk)
        # The exception's text may name hosts, buckets or upload ids: the API never shows it, the admin does.
        fail(job, RegistryError(ErrorCode.INTERNAL_ERROR, f"The registry failed while processing the bundle "
                                f"({type(error).__name__}); the details are in the worker's log. Retry the job: its "
                                "bundle is kept."), internal_cause=f"{type(error).__name__}: {error}")


def _saved_plan(job: IngestJob) -> BundlePlan:
    """The plan ``run`` saved; a job ``run`` began before the plan was kept validates its bundle again."""
    if job.plan is not None:
        return BundlePlan.from_json(job.plan)
    with staging.open_bundle(job.staging_path) as bundle, BundleReader(bundle) as reader:
        return validate_bundle(reader, inspect_bundle(bundle, inspect_limits()))


def run(job_id, task_id: str = "", may_retry: bool = False) -> NextTasks:
    """The first task: from the staged file to one verify task per layer.

    The task that starts the job (``task_id``) runs it, also when it is retried or delivered again;
    another copy of the task (the job was sent again while it waited) leaves it alone.
    """
    now = timezone.now()
    started = IngestJob.objects.filter(pk=job_id, state=IngestJob.State.QUEUED).update(
        state=IngestJob.State.RUNNING, started_at=now, heartbeat_at=now, run_task_id=task_id
    )
    job = _running(job_id)
    if job is None or (not started and job.run_task_id != task_id):
        return NO_TASKS
    with _job_logs(job), _job_errors(job, may_retry), staging.open_bundle(job.staging_path) as bundle:
        begin_stage(job, Stage.RECEIVE, job.bundle_size)
        job.bundle_digest = check_bundle_digest(job, bundle, StageProgress(job.pk, Stage.RECEIVE))
        IngestJob.objects.filter(pk=job.pk).update(bundle_digest=job.bundle_digest)
        end_stage(job, Stage.RECEIVE)
        metrics.INGEST_BUNDLE_BYTES.inc(job.bundle_size)

        begin_stage(job, Stage.INSPECT, job.bundle_size)
        inventory = inspect_bundle(bundle, inspect_limits())
        end_stage(job, Stage.INSPECT)

        with BundleReader(bundle) as reader:
            begin_stage(job, Stage.VALIDATE)
            plan = validate_bundle(reader, inventory)
            IngestJob.objects.filter(pk=job.pk).update(package_name=plan.name, version=plan.version,
                                                       plan=plan.to_json())
            structlog.contextvars.bind_contextvars(package=plan.name, version=plan.version)
            check_may_publish(job.cluster, plan.name, plan.version)
            identical = existing_outcome(job, find_version(plan.name, plan.version), plan)
            end_stage(job, Stage.VALIDATE)
            if identical is not None:
                _succeed_as(job, identical)
                return NO_TASKS

            begin_stage(job, Stage.VERIFY_IMAGES)
            layer_bytes = plan_images(job, reader, plan)
            begin_stage(job, Stage.VERIFY_IMAGES, layer_bytes)

        adopted, awaited = arrivals.adopt(job, inventory)
        _count_verified(job, adopted)
        layers = sorted(set(job.blobs.filter(role=BlobRole.LAYER, stored=False).values_list("digest", flat=True)))
        if not layers:
            return NextTasks(finish=_hand_over(job))
        # A layer still being checked since it arrived hands the job over itself when it is the last.
        return NextTasks(layers=tuple(digest for digest in layers if digest not in awaited))
    return NO_TASKS


def check_arrived_layer(arrival_id: int, may_retry: bool = False) -> tuple[str, NextTasks]:
    """A layer that arrived before its upload ended: checked and stored; if its job's run awaits it, the job's
    claim is marked stored (the last layer hands over to ``finish``), or, refused, checked by the job itself."""
    try:
        arrival = arrivals.check(arrival_id)
    except OUTAGES:
        if may_retry:
            raise
        # The last attempt: the job checks the layer itself, and meets the outage there if it lasts.
        logger.warning("Arrived layer %s is left to its job after an outage", arrival_id, exc_info=True)
        arrival = arrivals.refuse(arrival_id)
    job = _running(arrival.job_id) if arrival is not None and arrival.awaited else None
    if job is None:
        return "", NO_TASKS
    with _job_logs(job), _job_errors(job, may_retry):
        if arrival.state == ArrivedLayer.State.REFUSED:
            return str(job.pk), NextTasks(layers=(arrival.digest,))
        claims = list(job.blobs.filter(role=BlobRole.LAYER, digest=arrival.digest, stored=False))
        if claims:
            _count_verified(job, arrivals.take(arrival, claims))
        if not job.blobs.filter(role=BlobRole.LAYER, stored=False).exists():
            return str(job.pk), NextTasks(finish=_hand_over(job))
    return str(job.pk), NO_TASKS


def verify_layer(job_id, digest: str, may_retry: bool = False) -> NextTasks:
    """One layer: verified and stored in one pass; the last one hands the job over to ``finish``."""
    job = _running(job_id)
    if job is None:
        return NO_TASKS
    with _job_logs(job), _job_errors(job, may_retry):
        claims = list(job.blobs.filter(role=BlobRole.LAYER, digest=digest))
        if claims and not all(claim.stored for claim in claims):
            first, *others = claims
            with staging.open_bundle(job.staging_path) as bundle, BundleReader(bundle) as reader:
                verify_and_store_layer(first, reader, blob_store(), StageProgress(job.pk, Stage.VERIFY_IMAGES))
            check_declared_diff_ids(others, first.diff_id)
            JobBlob.objects.filter(job=job, role=BlobRole.LAYER, digest=digest).update(stored=True)
            # Which worker did which layer: what shows a big image's layers spread over the workers.
            logger.info("Layer %s verified and stored", digest)
        if not job.blobs.filter(role=BlobRole.LAYER, stored=False).exists():
            return NextTasks(finish=_hand_over(job))
    return NO_TASKS


def _count_verified(job: IngestJob, layer_bytes: int) -> None:
    """Layers that were checked while their bundle arrived count toward the job's verify_images stage at once."""
    if layer_bytes:
        progress = StageProgress(job.pk, Stage.VERIFY_IMAGES)
        progress.add(layer_bytes)
        progress.flush()


def _hand_over(job: IngestJob) -> bool:
    """Move the job from its layers to ``finish``; True for exactly one caller, however many finish at once."""
    if IngestJob.objects.filter(pk=job.pk, state=IngestJob.State.RUNNING, stage=Stage.VERIFY_IMAGES).update(
        stage=Stage.STORE
    ):
        end_stage(job, Stage.VERIFY_IMAGES)
        return True
    return False


def finish(job_id, may_retry: bool = False) -> None:
    """Store what is left (assets, image documents) and publish."""
    job = _running(job_id)
    if job is None:
        return
    with _job_logs(job), _job_errors(job, may_retry):
        with staging.open_bundle(job.staging_path) as bundle, BundleReader(bundle) as reader:
            remaining = job.blobs.filter(stored=False).exclude(role=BlobRole.LAYER)
            begin_stage(job, Stage.STORE, sum(claim.size for claim in remaining))
            store_documents_and_assets(job, reader, blob_store(), StageProgress(job.pk, Stage.STORE))
            end_stage(job, Stage.STORE)

        begin_stage(job, Stage.PUBLISH)
        publish(job, _saved_plan(job))
        end_stage(job, Stage.PUBLISH)
        _release_staging(job)
        arrivals.release_unused(job)
        JobBlob.objects.filter(job=job).delete()
        _succeeded()


def pending_tasks(job: IngestJob) -> NextTasks:
    """What a running job whose tasks were lost needs sent again to go on (every step is idempotent)."""
    if job.stage in (Stage.STORE, Stage.PUBLISH):
        return NextTasks(finish=True)
    layers = job.blobs.filter(role=BlobRole.LAYER)
    if job.stage == Stage.VERIFY_IMAGES and layers.exists():
        unstored = sorted(set(layers.filter(stored=False).values_list("digest", flat=True)))
        # Every layer stored, but the hand-over to finish was lost: any layer's task makes it.
        return NextTasks(layers=tuple(unstored) or (layers.values_list("digest", flat=True).first(),))
    return NextTasks(run=True)


def _succeeded() -> None:
    logger.info("Ingest job succeeded")
    metrics.count_finished_job("succeeded")


def _succeed_as(job: IngestJob, version) -> None:
    """An identical bundle was published before: the job points at that version, says nothing changed, keeps nothing."""
    IngestJob.objects.filter(pk=job.pk).update(
        state=IngestJob.State.SUCCEEDED, outcome=IngestJob.Outcome.UNCHANGED, package_version=version,
        finished_at=timezone.now(),
    )
    release(job)
    _succeeded()


def _storable(value):
    """``value`` with every string made storable: an error may quote a bundle's NUL or unpaired surrogate."""
    if isinstance(value, str):
        return value.replace("\0", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item) for item in value]
    return value


def fail(job: IngestJob, error: RegistryError, internal_cause: str = "") -> None:
    logger.info("Ingest job %s failed: %s %s", job.pk, error.code, error.message)
    failed = IngestJob.objects.filter(pk=job.pk, state__in=UNFINISHED).update(
        state=IngestJob.State.FAILED,
        error_code=error.code,
        error_message=_storable(error.message),
        error_details=_storable(error.details),
        internal_cause=_storable(internal_cause),
        finished_at=timezone.now(),
    )
    if failed:
        metrics.count_finished_job("failed", error.code)
    release(job, keep_staging=error.code in RETRYABLE_ERRORS)


def cancel(job: IngestJob) -> bool:
    """Cancel a queued or running job; False if it had finished already."""
    cancelled = IngestJob.objects.filter(pk=job.pk, state__in=UNFINISHED).update(
        state=IngestJob.State.CANCELLED, finished_at=timezone.now()
    )
    if cancelled:
        metrics.count_finished_job("cancelled")
        # A running task notices at its next progress write and releases again: harmless.
        release(job)
    return bool(cancelled)


def _release_staging(job: IngestJob) -> None:
    staging.remove(job.staging_path)


def release(job: IngestJob, keep_staging: bool = False) -> None:
    """Give back what an unsuccessful job held: the blobs only it needed, and its staging file unless kept.

    Every step of it may be done twice, so a release cut short (the blob store went away) is
    finished by running it again: see ``resume_release``.
    """
    if not keep_staging:
        _release_staging(job)
    claimed = JobBlob.objects.filter(job=job).values_list("digest", flat=True)
    arrived = ArrivedLayer.objects.filter(job=job).values_list("digest", flat=True)
    drop_unneeded([*claimed, *arrived], blob_store(), excluding_job=job)
    JobBlob.objects.filter(job=job).delete()
    ArrivedLayer.objects.filter(job=job).delete()


def resume_release(job: IngestJob) -> None:
    """Finish the release of an ended job that still holds claims: an outage cut it short."""
    retryable = job.state == IngestJob.State.FAILED and job.error_code in RETRYABLE_ERRORS
    release(job, keep_staging=retryable)
