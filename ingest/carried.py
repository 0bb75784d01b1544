"""Versions that arrive already unpacked (a transfer set's import): the pipeline's own stages, run in this process.

A carried version is read through a reader that presents it as the bundle it was published from
(``metadata.json``, ``manifest.json``, the image index and every blob as members), so it passes
exactly the checks an upload passes: ``validate_bundle``, ``plan_images`` (manifests, configs,
descriptors), ``verify_and_store_layer`` (digest, size and diff_id in one pass) and
``store_documents_and_assets``; then ``publish``, one transaction per version. Each version is an
``IngestJob`` of its own that claims its blobs, so GC and the reaper treat it like any other job.

Preparing (everything up to publishing) and publishing are separate steps, so that a caller can
verify a whole set of versions before it makes any of them visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.utils import timezone

from access.audit import Actor
from access.principals import check_may_publish
from blobs.store import blob_store
from dcos_bundle.errors import RegistryError
from dcos_bundle.format import BlobRole
from dcos_bundle.reader import BundleReader
from ingest import pipeline
from ingest.models import IngestJob, JobBlob
from ingest.progress import StageProgress, begin_stage, end_stage
from ingest.stages.inspect import Inventory
from ingest.stages.publish import existing_outcome, find_version, publish
from ingest.stages.store import store_documents_and_assets
from ingest.stages.validate import BundlePlan, validate_bundle
from ingest.stages.verify_images import plan_images, verify_and_store_layer

Stage = IngestJob.Stage
# How often the run's waiting jobs get a heartbeat: far within INGEST_REDISPATCH_AFTER_SECONDS (minutes), and
# seldom enough not to cost a database commit per progress write.
WAITING_HEARTBEAT_SECONDS = 30


@dataclass
class Verified:
    """Blobs verified and stored by the jobs of one run: a blob several versions share is read once.

    A layer counts with the diff_id it was checked against; another diff_id is checked again (and fails).
    """

    layers: set[tuple[str, str]] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)
    # The run's unfinished jobs: their heartbeat goes on while another job of the run works.
    jobs: list = field(default_factory=list)
    jobs_touched: float = 0.0

    def keep_jobs_alive(self) -> None:
        """A heartbeat for the run's waiting jobs, at most every WAITING_HEARTBEAT_SECONDS."""
        if time.monotonic() - self.jobs_touched >= WAITING_HEARTBEAT_SECONDS:
            self.jobs_touched = time.monotonic()
            IngestJob.objects.filter(pk__in=self.jobs, state=IngestJob.State.RUNNING).update(
                heartbeat_at=timezone.now())


class _RunProgress(StageProgress):
    """A job's progress that also keeps the run's waiting jobs alive (the reaper ends silent running jobs)."""

    def __init__(self, job_id, stage: str, verified: Verified):
        super().__init__(job_id, stage)
        self._verified = verified

    def flush(self) -> None:
        super().flush()
        self._verified.keep_jobs_alive()


def start(*, actor: Actor, bundle_name: str, bundle_digest: str, replace: bool, verified: Verified) -> IngestJob:
    """A running job for one carried version (it never waits for a worker)."""
    now = timezone.now()
    job = IngestJob.objects.create(
        state=IngestJob.State.RUNNING, stage=Stage.VALIDATE, bundle_name=bundle_name[:255],
        bundle_digest=bundle_digest, replace=replace, started_at=now, heartbeat_at=now,
        created_by=actor.label, cluster=actor.cluster)
    verified.jobs.append(job.pk)
    return job


def prepare(job: IngestJob, reader: BundleReader, inventory: Inventory, verified: Verified) -> BundlePlan:
    """Validate the version and verify and store every blob it uses: all but publishing. Raises RegistryError."""
    store = blob_store()
    begin_stage(job, Stage.VALIDATE)
    plan = validate_bundle(reader, inventory)
    IngestJob.objects.filter(pk=job.pk).update(package_name=plan.name, version=plan.version)
    check_may_publish(job.cluster, plan.name, plan.version)
    existing_outcome(job, find_version(plan.name, plan.version), plan)
    end_stage(job, Stage.VALIDATE)

    layer_bytes = plan_images(job, reader, plan)
    begin_stage(job, Stage.VERIFY_IMAGES, layer_bytes)
    progress = _RunProgress(job.pk, Stage.VERIFY_IMAGES, verified)
    for claim in job.blobs.filter(role=BlobRole.LAYER).order_by("digest", "diff_id"):
        if (claim.digest, claim.diff_id) not in verified.layers:
            verify_and_store_layer(claim, reader, store, progress)
            verified.layers.add((claim.digest, claim.diff_id))
    job.blobs.filter(role=BlobRole.LAYER).update(stored=True)
    end_stage(job, Stage.VERIFY_IMAGES)

    # Documents and assets an earlier job of the run verified and stored (and still claims) are not read again.
    done = job.blobs.exclude(role=BlobRole.LAYER).filter(digest__in=verified.blobs)
    remaining = job.blobs.exclude(role=BlobRole.LAYER).filter(stored=False)
    begin_stage(job, Stage.STORE, sum(claim.size for claim in remaining.exclude(pk__in=done)))
    done.update(stored=True)
    store_documents_and_assets(job, reader, store, _RunProgress(job.pk, Stage.STORE, verified))
    verified.blobs.update(job.blobs.exclude(role=BlobRole.LAYER).values_list("digest", flat=True))
    end_stage(job, Stage.STORE)
    return plan


def publish_prepared(job: IngestJob, plan: BundlePlan, verified: Verified) -> str:
    """Make a prepared version visible (one transaction); returns the job's outcome (published or replaced)."""
    verified.keep_jobs_alive()
    begin_stage(job, Stage.PUBLISH)
    publish(job, plan)
    end_stage(job, Stage.PUBLISH)
    JobBlob.objects.filter(job=job).delete()
    return IngestJob.objects.values_list("outcome", flat=True).get(pk=job.pk)


def abandon(job: IngestJob, error: RegistryError) -> None:
    """End a job that will not publish: failed with ``error``, its blobs released as any failed job's."""
    pipeline.fail(job, error)
