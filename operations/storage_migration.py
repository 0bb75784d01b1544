"""Moving every blob to another backend while the registry keeps serving, then switching the backend lock.

Passes copy what the target lacks (every Blob row, and blobs the source holds that no row records
yet), each verified on the way, until a pass meets no blob it had not handled. Then a short hold:
new uploads are refused (``StorageBackend.migrating_to``), ingest jobs already running are waited
for, and a last pass runs under the lock row's lock, in the transaction that switches the lock to
the target. Store stages record blobs holding that row shared, so none is recorded in the source
after the last pass, and every process still configured for the source refuses to write there
afterwards. The source is only read, never changed: it stays a complete copy of the catalogue
as it was at the switch.

A run that stops (killed, a network failure) resumes: blobs the target already holds are skipped.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

from django.db import transaction
from django.utils import timezone

from blobs.drivers import BlobNotFound, BlobStore, DigestMismatch, SizeMismatch, UnsupportedStorageURL
from blobs.drivers.transfer import copy_blob
from blobs.models import Blob, StorageBackend
from blobs.store import StorageBackendMismatch, blob_store, ensure_backend_lock, store_from_settings
from ingest.models import IngestJob
from operations.models import OperationRun
from operations.runs import recorded_run

# A registry that never stops writing still gets its final phase after this many passes.
MAX_PASSES = 10
JOB_POLL_SECONDS = 0.5


class StorageMigrationError(Exception):
    """A migration that cannot start or go on; the message says why and what to do."""


@dataclass
class MigrationReport:
    source: str
    target: str
    passes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    # Already in the target: copied by an earlier, interrupted run.
    skipped: int = 0
    skipped_bytes: int = 0
    # Gone from the source before they were copied: released by an ingest that failed meanwhile.
    vanished: int = 0
    # Ingest jobs still unfinished when the wait ended; they fail with storage_moved if they store again.
    unfinished_jobs: int = 0
    switched: bool = False

    def to_json(self) -> dict:
        return asdict(self)


#: Called with an event ("copied", "skipped", "pass", "hold", "switched") and the report so far.
ProgressCallback = Callable[[str, MigrationReport], None]


def unwritable(where: str, error: Exception) -> StorageMigrationError:
    return StorageMigrationError(
        f"Cannot write to the target {where} ({type(error).__name__}: {error}). Check the URL, that the directory "
        "or bucket exists and is writable, and the S3_* settings."
    )


def open_target(url: str) -> BlobStore:
    try:
        return store_from_settings(url)
    except UnsupportedStorageURL as error:
        raise StorageMigrationError(f"--to {url!r} is not a storage URL: {error}") from None
    except OSError as error:  # a local directory that cannot be created
        raise unwritable(url, error) from None


def check_migration(source: BlobStore, target: BlobStore) -> None:
    """Refuse a source the registry is not locked to, a target that is the source, or one that cannot be written."""
    try:
        ensure_backend_lock(source)
    except StorageBackendMismatch as mismatch:
        raise StorageMigrationError(
            f"STORAGE_URL names {source.identity}, but the registry's blobs live in {mismatch.locked.identity}. Run "
            f"migrate_storage with the STORAGE_URL the registry runs on (if a migration to "
            f"{mismatch.locked.identity} finished, there is nothing left to do)."
        ) from None
    if target.identity == source.identity:
        raise StorageMigrationError(f"The target {target.identity} is the backend the registry already uses; "
                                    "name another one with --to.")
    try:
        target.probe()
    except Exception as error:  # whatever the driver raises, the operator needs its words
        raise unwritable(target.identity, error) from None


def migrate_storage(url: str, *, wait_seconds: float, progress: ProgressCallback | None = None) -> MigrationReport:
    """Copy every blob to the store at ``url`` and switch the registry's lock to it."""
    source, target = blob_store(), open_target(url)
    check_migration(source, target)
    report = MigrationReport(source=source.identity, target=target.identity)
    with recorded_run(OperationRun.Kind.MIGRATE_STORAGE, target=target.identity) as run:
        try:
            _migrate(_Copier(source, target, report, progress or (lambda event, report: None)), url, wait_seconds)
        finally:
            run.summary = report.to_json()
    return report


def _migrate(copier: _Copier, url: str, wait_seconds: float) -> None:
    report = copier.report
    for _ in range(MAX_PASSES):
        if not copier.run_pass():
            break
    with _holding_new_ingest(copier.target):
        copier.progress("hold", report)
        report.unfinished_jobs = _wait_for_running_jobs(wait_seconds)
        with transaction.atomic():
            lock = StorageBackend.objects.select_for_update().get(pk=1)
            if lock.identity != copier.source.identity:
                raise StorageMigrationError(f"The lock moved to {lock.identity} while this migration ran; nothing "
                                            "was switched.")
            copier.run_pass()
            StorageBackend.objects.filter(pk=1).update(
                kind=copier.target.kind, identity=copier.target.identity, url=url, locked_at=timezone.now(),
                migrating_to="",
            )
    report.switched = True
    copier.progress("switched", report)


@contextmanager
def _holding_new_ingest(target: BlobStore) -> Iterator[None]:
    """New uploads answer 503 storage_migration until the switch (or a failure) ends the hold."""
    StorageBackend.objects.filter(pk=1).update(migrating_to=target.identity)
    try:
        yield
    finally:
        StorageBackend.objects.filter(pk=1).update(migrating_to="")


def _wait_for_running_jobs(wait_seconds: float) -> int:
    deadline = time.monotonic() + wait_seconds
    while True:
        unfinished = IngestJob.objects.filter(state__in=IngestJob.UNFINISHED_STATES).count()
        if not unfinished or time.monotonic() >= deadline:
            return unfinished
        time.sleep(JOB_POLL_SECONDS)


class _Copier:
    """Copies blobs from source to target pass after pass, remembering what it handled."""

    def __init__(self, source: BlobStore, target: BlobStore, report: MigrationReport, progress: ProgressCallback):
        self.source, self.target, self.report, self.progress = source, target, report, progress
        self.handled: set[str] = set()

    def run_pass(self) -> int:
        """Handle every blob not handled before; return how many there were."""
        self.report.passes += 1
        before = len(self.handled)
        for digest, size in self._candidates():
            if digest not in self.handled:
                self._copy(digest, size)
                self.handled.add(digest)
        self.progress("pass", self.report)
        return len(self.handled) - before

    def _candidates(self) -> Iterator[tuple[str, int]]:
        yield from Blob.objects.order_by().values_list("digest", "size").iterator(chunk_size=2000)
        # Written but not yet recorded (an ingest in its store stage), or never recorded at all.
        for info in self.source.iter_blobs():
            yield info.digest, info.size

    def _copy(self, digest: str, size: int) -> None:
        report = self.report
        try:
            copied = copy_blob(self.source, self.target, digest, size)
        except BlobNotFound:
            if self._still_recorded(digest):
                raise StorageMigrationError(
                    f"Blob {digest} is recorded but missing from {self.source.identity}; run verify_blobs and repair "
                    "it before migrating (the blobs copied so far stay in the target)."
                ) from None
            report.vanished += 1
            return
        except (DigestMismatch, SizeMismatch) as damage:
            raise StorageMigrationError(
                f"Blob {digest} is damaged in {self.source.identity}: {damage} Run verify_blobs and repair it before "
                "migrating (the blobs copied so far stay in the target)."
            ) from None
        except Exception as error:  # a network or disk failure: the run stops here and resumes on the next
            raise StorageMigrationError(
                f"Copying {digest} to {self.target.identity} failed ({type(error).__name__}: {error}). "
                f"{report.copied} blobs were copied so far; run the command again to resume."
            ) from error
        if copied:
            report.copied += 1
            report.copied_bytes += size
        else:
            report.skipped += 1
            report.skipped_bytes += size
        self.progress("copied" if copied else "skipped", report)

    def _still_recorded(self, digest: str) -> bool:
        """Whether a blob the source lacks is still recorded, once a release deleting it (under its row lock) ended."""
        with transaction.atomic():
            return Blob.objects.select_for_update().filter(digest=digest).exists() and not self.source.exists(digest)
