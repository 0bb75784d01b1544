"""Garbage collection: blobs no version needs, staging nobody will commit, writes that never finished.

Safe while ingest runs. A blob is deleted only under its Blob row's lock (the lock ingest takes to
record a blob as stored), only if no published version references it and no unfinished job has
claimed it, only if it is older than the protection window, and never while a backup or storage
migration copies blobs from a list it made earlier; staging (files, or objects and unfinished multipart
uploads in S3) and abandoned writes likewise only once they are older than the window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from blobs.models import Blob
from blobs.store import blob_store
from ingest import staging
from ingest.arrivals import release_upload
from ingest.models import IngestJob, UploadSession
from ingest.stages.store import blob_needed
from operations.models import OperationRun
from operations.runs import maintenance_running, recorded_run

logger = logging.getLogger(__name__)
UNFINISHED = IngestJob.UNFINISHED_STATES


@dataclass
class GcReport:
    dry_run: bool
    protection: timedelta = timedelta(0)
    blobs: list[str] = field(default_factory=list)
    blob_bytes: int = 0
    # Unused blobs younger than the protection window (a version removed soon after its upload): kept this
    # time, collectable by a run after ``held_back_until``.
    held_back_blobs: int = 0
    held_back_bytes: int = 0
    held_back_until: datetime | None = None
    staged_files: list[str] = field(default_factory=list)
    abandoned_uploads: list[str] = field(default_factory=list)
    abandoned_writes: int = 0
    # Why unused blobs were kept this time (a backup or storage migration running), if they were.
    blobs_kept_because: str = ""

    def hold_back(self, row: Blob) -> None:
        self.held_back_blobs += 1
        self.held_back_bytes += row.size
        until = row.created_at + self.protection
        self.held_back_until = until if self.held_back_until is None else max(self.held_back_until, until)

    def to_json(self) -> dict:
        return {
            "dry_run": self.dry_run, "protection_seconds": self.protection.total_seconds(), "blobs": self.blobs,
            "blob_bytes": self.blob_bytes, "held_back_blobs": self.held_back_blobs,
            "held_back_bytes": self.held_back_bytes,
            "held_back_until": self.held_back_until.isoformat() if self.held_back_until else None,
            "staged_files": self.staged_files, "abandoned_uploads": self.abandoned_uploads,
            "abandoned_writes": self.abandoned_writes, "blobs_kept_because": self.blobs_kept_because,
        }

    def counts(self) -> dict:
        counts = {"blobs": len(self.blobs), "blob_bytes": self.blob_bytes, "staged_files": len(self.staged_files),
                  "abandoned_uploads": len(self.abandoned_uploads), "abandoned_writes": self.abandoned_writes}
        if self.held_back_blobs:
            counts.update(held_back_blobs=self.held_back_blobs, held_back_bytes=self.held_back_bytes)
        if self.blobs_kept_because:
            counts["blobs_kept_because"] = self.blobs_kept_because
        return counts


def collect(protection: timedelta | None = None, dry_run: bool = False) -> GcReport:
    if dry_run:
        return _collect(protection, dry_run)
    with recorded_run(OperationRun.Kind.GC) as run:
        report = _collect(protection, dry_run)
        run.summary = report.counts()
    return report


def _collect(protection: timedelta | None, dry_run: bool) -> GcReport:
    protection = protection if protection is not None else timedelta(seconds=settings.GC_PROTECTION_SECONDS)
    cutoff = timezone.now() - protection
    report = GcReport(dry_run, protection)
    collect_blobs(cutoff, report)
    _collect_staging(cutoff, report, dry_run)
    if not dry_run:
        # Files being written are kept by their age alone: a write touches its file as it goes.
        report.abandoned_writes = blob_store().sweep_incomplete(older_than=time.time() - protection.total_seconds())
        # A dry run is a question: its answer is the report, printed by whoever asked, never a log line.
        _log(report)
    return report


def _log(report: GcReport) -> None:
    if report.blobs_kept_because:
        logger.warning("GC kept every blob: %s", report.blobs_kept_because)
    logger.info("GC deleted %d blobs (%d bytes), %d staged files, %d abandoned uploads, %d abandoned writes; "
                "%d unused blobs (%d bytes) are younger than the protection window",
                len(report.blobs), report.blob_bytes, len(report.staged_files), len(report.abandoned_uploads),
                report.abandoned_writes, report.held_back_blobs, report.held_back_bytes)


def collect_blobs(cutoff, report: GcReport) -> None:
    """Blobs are safe without any window: claims and the Blob row lock decide; the window is a margin."""
    store = blob_store()
    for info in store.iter_blobs():
        with transaction.atomic():
            row = Blob.objects.select_for_update().filter(digest=info.digest).first()
            # A blob without a row is one an ingest has just written and not yet recorded: wait for it.
            if row is None or blob_needed(info.digest):
                continue
            if row.created_at > cutoff:
                report.hold_back(row)
                continue
            # Asked under the row lock: a backup not yet visible here takes its snapshot later, when no version
            # can reference this blob any more.
            if not report.blobs_kept_because and (run := maintenance_running()):
                report.blobs_kept_because = (f"{run.kind} run {run.pk} (started {run.started_at:%Y-%m-%d %H:%M:%S} "
                                             f"UTC) is copying blobs")
            if report.blobs_kept_because:
                continue  # on through the rest only to count what the window holds back
            report.blobs.append(info.digest)
            report.blob_bytes += info.size
            if not report.dry_run:
                store.delete(info.digest)
                row.delete()


def _collect_staging(cutoff, report: GcReport, dry_run: bool) -> None:
    abandoned = UploadSession.objects.filter(state=UploadSession.State.OPEN, updated_at__lt=cutoff)
    for session in abandoned:
        report.abandoned_uploads.append(str(session.pk))
        if not dry_run and UploadSession.objects.filter(pk=session.pk, updated_at__lt=cutoff).update(
                state=UploadSession.State.CANCELLED):
            release_upload(session)
    in_use = set(IngestJob.objects.filter(state__in=UNFINISHED).values_list("staging_path", flat=True))
    open_uploads = set(UploadSession.objects.filter(state=UploadSession.State.OPEN).values_list("pk", flat=True))
    report.staged_files = staging.area().sweep(cutoff.timestamp(), in_use, open_uploads, dry_run)
