"""The ingest pipeline: a staged bundle becomes a published version, or a failed job that left nothing.

Three kinds of task drive it (see ``tasks.py``, which sends the ``NextTasks`` each step returns), each idempotent, so a task delivered twice
(a worker died, acks are late) redoes or skips work but never doubles it:

- ``run``: receive, inspect, validate, then plan the images and fan out one task per layer;
- ``verify_layer``: one layer checked and stored in a single pass; the task that finishes the
  last layer hands over to ``finish`` (a database update decides which one does);
- ``finish``: store the assets and image documents, then publish in one transaction.

A job that fails or is cancelled releases what it held: the blobs it claimed that no published
version and no other unfinished job uses, and its staging file, unless the failure says nothing
against the bundle (``RETRYABLE_ERRORS``): then the file stays for a retry, until GC sweeps it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access.principals import check_may_publish
from blobs.models import Blob
from blobs.store import blob_store
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import BlobRole
from dcos_bundle.reader import BundleReader
from ingest import staging
from ingest.models import IngestJob, JobBlob
from ingest.progress import JobCancelled, StageProgress, begin_stage, end_stage
from ingest.stages.inspect import InspectLimits, inspect_bundle
from ingest.stages.publish import existing_outcome, find_version, publish
from ingest.stages.receive import check_bundle_digest
from ingest.stages.store import blob_needed, store_documents_and_assets
from ingest.stages.validate import BundlePlan, validate_bundle
from ingest.stages.verify_images import plan_images, verify_and_store_layer
from telemetry import metrics

logger = logging.getLogger(__name__)
Stage = IngestJob.Stage
UNFINISHED = IngestJob.UNFINISHED_STATES

# Failures of the registry, not of the bundle: the same bundle may well succeed when retried.
RETRYABLE_ERRORS = frozenset({ErrorCode.INTERNAL_ERROR, ErrorCode.WORKER_LOST, ErrorCode.BLOB_STORE_UNSTABLE})


@dataclass(frozen=True)
class NextTasks:
    """What a step leaves to other tasks (``tasks.py`` sends them): layers to verify, or the finish."""

    layers: tuple[str, ...] = ()
    finish: bool = False


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
def _job_errors(job: IngestJob):
    """Turn whatever stops a stage into the job's end: failed with a reason, or released after a cancel."""
    try:
        yield
    except JobCancelled:
        release(job)
    except RegistryError as error:
        fail(job, error)
    except Exception as error:  # every failure ends the job cleanly, and is logged whole
        logger.exception("Ingest job %s failed unexpectedly", job.pk)
        # The exception's text may name hosts, buckets or upload ids: the API never shows it, the admin does.
        fail(job, RegistryError(ErrorCode.INTERNAL_ERROR, f"The registry failed while processing the bundle "
                                f"({type(error).__name__}); the details are in the worker's log. Retry the job: its "
                                "bundle is kept."), internal_cause=f"{type(error).__name__}: {error}")


def _plan(job: IngestJob, reader: BundleReader) -> BundlePlan:
    return validate_bundle(reader, inspect_bundle(job.staging_path, inspect_limits()))


def run(job_id) -> NextTasks:
    """The first task: from the staged file to one verify task per layer."""
    now = timezone.now()
    IngestJob.objects.filter(pk=job_id, state=IngestJob.State.QUEUED).update(
        state=IngestJob.State.RUNNING, started_at=now, heartbeat_at=now
    )
    job = _running(job_id)
    if job is None:
        return NO_TASKS
    with _job_logs(job), _job_errors(job):
        begin_stage(job, Stage.RECEIVE, job.bundle_size)
        job.bundle_digest = check_bundle_digest(job, StageProgress(job.pk, Stage.RECEIVE))
        IngestJob.objects.filter(pk=job.pk).update(bundle_digest=job.bundle_digest)
        end_stage(job, Stage.RECEIVE)
        metrics.INGEST_BUNDLE_BYTES.inc(job.bundle_size)

        begin_stage(job, Stage.INSPECT, job.bundle_size)
        inventory = inspect_bundle(job.staging_path, inspect_limits())
        end_stage(job, Stage.INSPECT)

        with BundleReader(job.staging_path) as reader:
            begin_stage(job, Stage.VALIDATE)
            plan = validate_bundle(reader, inventory)
            IngestJob.objects.filter(pk=job.pk).update(package_name=plan.name, version=plan.version)
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

        layers = sorted(set(job.blobs.filter(role=BlobRole.LAYER, stored=False).values_list("digest", flat=True)))
        return NextTasks(layers=tuple(layers)) if layers else NextTasks(finish=_hand_over(job))
    return NO_TASKS


def verify_layer(job_id, digest: str) -> NextTasks:
    """One layer: verified and stored in one pass; the last one hands the job over to ``finish``."""
    job = _running(job_id)
    if job is None:
        return NO_TASKS
    with _job_logs(job), _job_errors(job):
        claims = list(job.blobs.filter(role=BlobRole.LAYER, digest=digest))
        if claims and not all(claim.stored for claim in claims):
            first, *others = claims
            with BundleReader(job.staging_path) as reader:
                verify_and_store_layer(first, reader, blob_store(), StageProgress(job.pk, Stage.VERIFY_IMAGES))
            # The same layer in several images: every config must declare the same diff_id.
            for other in others:
                if other.diff_id != first.diff_id:
                    raise RegistryError(
                        ErrorCode.DIFF_ID_MISMATCH,
                        f"Layer {digest} of image {other.name}: the config declares {other.diff_id}, but the layer "
                        f"decompresses to {first.diff_id}.",
                        layer=digest, reference=other.name, expected=other.diff_id, actual=first.diff_id,
                    )
            JobBlob.objects.filter(job=job, role=BlobRole.LAYER, digest=digest).update(stored=True)
            # Which worker did which layer: what shows a big image's layers spread over the workers.
            logger.info("Layer %s verified and stored", digest)
        if not job.blobs.filter(role=BlobRole.LAYER, stored=False).exists():
            return NextTasks(finish=_hand_over(job))
    return NO_TASKS


def _hand_over(job: IngestJob) -> bool:
    """Move the job from its layers to ``finish``; True for exactly one caller, however many finish at once."""
    if IngestJob.objects.filter(pk=job.pk, state=IngestJob.State.RUNNING, stage=Stage.VERIFY_IMAGES).update(
        stage=Stage.STORE
    ):
        end_stage(job, Stage.VERIFY_IMAGES)
        return True
    return False


def finish(job_id) -> None:
    """Store what is left (assets, image documents) and publish."""
    job = _running(job_id)
    if job is None:
        return
    with _job_logs(job), _job_errors(job):
        with BundleReader(job.staging_path) as reader:
            remaining = job.blobs.filter(stored=False).exclude(role=BlobRole.LAYER)
            begin_stage(job, Stage.STORE, sum(claim.size for claim in remaining))
            store_documents_and_assets(job, reader, blob_store(), StageProgress(job.pk, Stage.STORE))
            end_stage(job, Stage.STORE)

            begin_stage(job, Stage.PUBLISH)
            plan = _plan(job, reader)
        publish(job, plan)
        end_stage(job, Stage.PUBLISH)
        _release_staging(job)
        JobBlob.objects.filter(job=job).delete()
        _succeeded()


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
    """Give back what an unsuccessful job held: the blobs only it needed, and its staging file unless kept."""
    if not keep_staging:
        _release_staging(job)
    store = blob_store()
    for digest in set(JobBlob.objects.filter(job=job).values_list("digest", flat=True)):
        with transaction.atomic():
            blob = Blob.objects.select_for_update().filter(digest=digest).first()
            if not blob_needed(digest, excluding_job=job):
                store.delete(digest)
                if blob is not None:
                    blob.delete()
    JobBlob.objects.filter(job=job).delete()
