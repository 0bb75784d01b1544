"""Ingest operations behind the upload API: plain functions, callable from views, commands and tests.

Starting an upload, cancelling and retrying a job are written to the audit log for the ``actor``
the caller names.
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models.signals import pre_delete
from django.utils import timezone

from access import audit
from access.audit import Actor
from access.models import AuditEvent, Cluster
from blobs.store import refuse_uploads_when_disk_low, refuse_uploads_while_storage_moves
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.digests import ResumableSha256
from ingest import pipeline, staging, tasks
from ingest.arrivals import ArrivalWatch, release_upload
from ingest.models import ArrivedLayer, IngestJob, UploadSession

_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def parse_sha256(value: str | None, field: str = "sha256") -> str:
    """``sha256:<hex>`` from that form or bare hex; empty when not given."""
    if not value:
        return ""
    match = _DIGEST.match(value.strip().lower())
    if not match:
        raise RegistryError(ErrorCode.INVALID_DIGEST, f"{field} must be a sha256 digest (64 hex digits), not {value!r}.",
                          field=field)
    return f"sha256:{match.group(1)}"


# The column a bundle's file name is kept in (UploadSession.file_name is as long).
MAX_FILE_NAME = IngestJob._meta.get_field("bundle_name").max_length


def check_file_name(name: str) -> None:
    """Refuse a file name the registry cannot keep: longer than its column, or with control characters or NUL."""
    if len(name) > MAX_FILE_NAME or not name.isprintable():
        raise RegistryError(
            ErrorCode.INVALID_REQUEST, f"file_name must be at most {MAX_FILE_NAME} printable characters (no control "
            f"characters); {name[:40]!r}{'…' if len(name) > 40 else ''} is not.", field="file_name", limit=MAX_FILE_NAME,
        )


def _queue(job: IngestJob) -> IngestJob:
    """Hand the job to the workers once its row is committed (the worker must find it).

    Callers check the broker first (``tasks.require_broker``); a send that fails all the same is
    left to the re-dispatch, which goes by ``dispatched_at``.
    """
    IngestJob.objects.filter(pk=job.pk).update(dispatched_at=timezone.now())
    transaction.on_commit(lambda: tasks.send_run(job.pk))
    return job


def _created_by(actor: Actor) -> dict:
    """The fields that name who created a job or upload session, which decide who reaches it (access.principals)."""
    return {"created_by": actor.label, "cluster": actor.cluster}


@contextmanager
def receiving_job(*, actor: Actor, bundle_name: str, replace: bool,
                  expected_digest: str = "") -> Iterator[IngestJob]:
    """A job of ``actor`` that owns its staged bundle from the first byte (so GC leaves it alone).

    If receiving fails, the job and the bundle are gone again; until ``queue`` it is "queued"
    with no size, which the reaper ends if the web process died mid-upload.
    """
    job_id = uuid.uuid4()
    job = IngestJob.objects.create(id=job_id, bundle_name=bundle_name, replace=replace, expected_digest=expected_digest,
                                   staging_path=staging.bundle_location(job_id), **_created_by(actor))
    try:
        yield job
    except BaseException:
        # With what arrived of it: layers a worker may have stored already.
        pipeline.release(job)
        job.delete()
        raise


def queue(job: IngestJob, *, size: int, digest: str, actor: Actor) -> IngestJob:
    with transaction.atomic():
        IngestJob.objects.filter(pk=job.pk).update(bundle_size=size, bundle_digest=digest)
        job.bundle_size, job.bundle_digest = size, digest
        audit.record(actor, AuditEvent.Action.UPLOAD, f"job {job.pk}", bundle=job.bundle_name, size=size,
                     replace=job.replace)
        return _queue(job)


def check_declared_digest(digest: str, expected_digest: str) -> None:
    if expected_digest and digest != expected_digest:
        raise RegistryError(
            ErrorCode.UPLOAD_DIGEST_MISMATCH,
            f"The uploaded bundle hashes to {digest}, not to the declared {expected_digest}; nothing was kept.",
            expected=expected_digest, actual=digest,
        )


def receive_bundle(
    stream: BinaryIO, *, actor: Actor, declared_size: int | None, bundle_name: str, replace: bool,
    expected_digest: str = "",
) -> IngestJob:
    """A whole bundle in one request: staged (hashed on the way) and queued."""
    check_file_name(bundle_name)
    if declared_size is not None and declared_size > settings.MAX_BUNDLE_BYTES:
        raise staging.too_large(declared_size)
    refuse_uploads_while_storage_moves()
    refuse_uploads_when_disk_low()
    tasks.require_broker()
    with receiving_job(actor=actor, bundle_name=bundle_name, replace=replace) as job:
        watch = _arrival_watch(job.staging_path, job=job)
        digest, size = staging.receive(stream, job.staging_path, declared_size, watch.pass_on if watch else None)
        check_declared_digest(digest, expected_digest)
        return queue(job, size=size, digest=digest, actor=actor)


def _arrival_watch(location: str, **owner) -> ArrivalWatch | None:
    """What hands an upload's layers to the workers as they arrive, where workers can read them before the upload
    is complete (``ingest.arrivals``)."""
    return ArrivalWatch(location, tasks.send_arrival, **owner) if staging.area().readable_while_receiving else None


def open_upload(*, actor: Actor, size: int, expected_digest: str, file_name: str, replace: bool) -> UploadSession:
    check_file_name(file_name)
    if size <= 0:
        raise RegistryError(ErrorCode.INVALID_SIZE, f"size must be a positive number of bytes, not {size}.", field="size")
    if size > settings.MAX_BUNDLE_BYTES:
        raise staging.too_large(size)
    refuse_uploads_while_storage_moves()
    refuse_uploads_when_disk_low()
    session = UploadSession(size=size, expected_digest=expected_digest, file_name=file_name, replace=replace,
                            **_created_by(actor))
    area = staging.area()
    area.begin_upload(session)
    try:
        with transaction.atomic():
            session.save(force_insert=True)
            audit.record(actor, AuditEvent.Action.UPLOAD, f"upload {session.pk}", bundle=file_name, size=size,
                         replace=replace)
    except BaseException:
        area.discard_upload(session)
        raise
    return session


def unknown_upload(session_id) -> RegistryError:
    return RegistryError(ErrorCode.UPLOAD_UNKNOWN, f"There is no upload {session_id}.", upload=str(session_id))


def _open_session(session_id) -> UploadSession:
    try:
        session = UploadSession.objects.filter(pk=uuid.UUID(str(session_id))).first()
    except ValueError:  # not a UUID: no upload has that id
        session = None
    if session is None:
        raise unknown_upload(session_id)
    if session.state != UploadSession.State.OPEN:
        raise RegistryError(ErrorCode.UPLOAD_CLOSED, f"Upload {session_id} is {session.state}; it takes no more requests.",
                          upload=str(session_id), state=session.state)
    return session


def append_chunk(session_id, stream: BinaryIO, start: int, end: int, total: int) -> UploadSession:
    """Append bytes ``start..end`` (inclusive) of the bundle; they must begin at the current offset."""
    session = _open_session(session_id)
    if total != session.size:
        raise RegistryError(ErrorCode.RANGE_INVALID, f"Content-Range names a total of {total} bytes; the upload was opened "
                          f"for {session.size}.", upload=str(session.pk), size=session.size)
    if end >= total or end < start:
        raise RegistryError(ErrorCode.RANGE_INVALID, f"bytes {start}-{end} is not a range inside {total} bytes.",
                          upload=str(session.pk))
    refuse_uploads_when_disk_low()
    area = staging.area()
    refused = None
    # One writer at a time per upload, whichever web process the chunk reached.
    with area.upload_lock(session.pk):
        session.refresh_from_db()
        if session.state != UploadSession.State.OPEN:
            raise RegistryError(ErrorCode.UPLOAD_CLOSED, f"Upload {session.pk} is {session.state}.", upload=str(session.pk))
        if start != session.offset:
            raise RegistryError(
                ErrorCode.RANGE_MISMATCH,
                f"This chunk starts at byte {start}, but the upload continues at byte {session.offset}.",
                upload=str(session.pk), offset=session.offset,
            )
        received = _resumed_hash(session, start)
        # Followed from the first byte on, or not at all (the upload began before its members were followed).
        watch = _arrival_watch(area.upload_location(session), upload=session, state=session.member_scan) \
            if session.member_scan or not start else None

        def observe(chunk) -> None:
            if received is not None:
                received.update(chunk)
            if watch is not None:
                watch.feed(chunk)

        try:
            session.offset = area.append(session, stream, start, end - start + 1, observe)
        except RegistryError as error:
            if error.code not in staging.REFUSED_AT_THE_START:
                raise
            refused = error
        else:
            session.received_hash = received.state() if received is not None else None
            session.member_scan = watch.state() if watch is not None else None
            session.save(update_fields=["offset", "staged_parts", "staged_tail", "received_hash", "member_scan",
                                        "updated_at"])
            # Only bytes the session now counts as received: a chunk that broke off may come again otherwise.
            if watch is not None:
                watch.hand_over()
    if refused is not None:
        # The file being sent is no bundle: nothing of it is kept, and the upload ends here.
        _discard_upload(session.pk)
        raise RegistryError(ErrorCode(refused.code), f"{refused.message} Upload {session.pk} is cancelled.",
                            **refused.details, upload=str(session.pk)) from None
    return session


def commit_upload(session_id, expected_digest: str = "") -> IngestJob:
    session = _open_session(session_id)
    if session.offset != session.size:
        raise RegistryError(ErrorCode.UPLOAD_INCOMPLETE, f"Upload {session.pk} has {session.offset} of its {session.size} "
                          "bytes; send the rest before committing.", offset=session.offset, size=session.size)
    refuse_uploads_while_storage_moves()
    # Before the session is committed: refused, it can be committed again later.
    tasks.require_broker()
    expected = expected_digest or session.expected_digest
    if session.expected_digest and expected != session.expected_digest:
        raise RegistryError(ErrorCode.UPLOAD_DIGEST_MISMATCH, f"The commit names {expected}, but the upload was opened for "
                          f"{session.expected_digest}.", expected=session.expected_digest, actual=expected)
    job_id = uuid.uuid4()
    area = staging.area()
    with area.upload_lock(session.pk), transaction.atomic():
        session.refresh_from_db()
        if session.state != UploadSession.State.OPEN:
            raise RegistryError(ErrorCode.UPLOAD_CLOSED, f"Upload {session.pk} is {session.state}.", upload=str(session.pk))
        job = IngestJob.objects.create(
            id=job_id, bundle_name=session.file_name, bundle_size=session.size, expected_digest=expected,
            bundle_digest=_received_digest(session), staging_path=area.commit_upload(session, job_id),
            replace=session.replace, created_by=session.created_by, cluster_id=session.cluster_id,
        )
        ArrivedLayer.objects.filter(upload=session).update(job=job)
        session.state = UploadSession.State.COMMITTED
        session.job = job
        session.save(update_fields=["state", "job", "updated_at"])
        return _queue(job)


def _resumed_hash(session: UploadSession, start: int) -> ResumableSha256 | None:
    """The sha256 of the upload so far, to go on with; None once it could not be carried (the job hashes the
    staged bundle instead)."""
    if not ResumableSha256.available or (start and not session.received_hash):
        return None
    try:
        return ResumableSha256(session.received_hash if start else None)
    except ValueError:  # saved by a web that lays the state out otherwise
        return None


def _received_digest(session: UploadSession) -> str:
    """The digest of the upload as its chunks were hashed on arrival; empty if one was received elsewhere (a web
    without OpenSSL's sha256): then the job hashes the staged bundle."""
    if not session.received_hash or session.received_hash.get("size") != session.size:
        return ""
    try:
        return ResumableSha256(session.received_hash).digest
    except ValueError:
        return ""


def cancel_upload(session_id) -> None:
    _discard_upload(_open_session(session_id).pk)


def _discard_upload(session_id) -> None:
    UploadSession.objects.filter(pk=session_id, state=UploadSession.State.OPEN).update(
        state=UploadSession.State.CANCELLED)
    session = UploadSession.objects.get(pk=session_id)
    staging.area().discard_upload(session)
    release_upload(session)


def cancel_job(job: IngestJob, actor: Actor) -> IngestJob:
    if not pipeline.cancel(job):
        raise RegistryError(ErrorCode.JOB_FINISHED, f"Job {job.pk} has already {job.state}; there is nothing to cancel.",
                          state=job.state)
    job.refresh_from_db()
    audit.record(actor, AuditEvent.Action.JOB_CANCEL, f"job {job.pk}", state=job.state)
    return job


def retry_job(job: IngestJob, actor: Actor) -> IngestJob:
    """A new job for the bundle a failed job left staged; the staged bundle moves to the new job.

    Only failures of the registry keep the bundle (``pipeline.RETRYABLE_ERRORS``), and only until
    GC sweeps it; a bundle that was itself at fault would fail the same way again.
    """
    tasks.require_broker()
    with transaction.atomic():
        job = IngestJob.objects.select_for_update().get(pk=job.pk)
        if job.state != IngestJob.State.FAILED:
            raise RegistryError(ErrorCode.JOB_NOT_FAILED, f"Job {job.pk} is {job.state}; only failed jobs can be retried.",
                              state=job.state)
        if retried_as := job.error_details.get("retried_as"):
            raise RegistryError(ErrorCode.JOB_RETRIED, f"Job {job.pk} was already retried as job {retried_as}.",
                              retried_as=retried_as)
        if job.error_code not in pipeline.RETRYABLE_ERRORS:
            raise RegistryError(ErrorCode.BUNDLE_GONE, f"Job {job.pk} failed because of its bundle ({job.error_code}); its "
                              "staged copy was removed. Fix the bundle and upload it again.", error_code=job.error_code)
        area = staging.area()
        if not job.staging_path or not area.exists(job.staging_path):
            raise RegistryError(ErrorCode.BUNDLE_GONE, f"The staged bundle of job {job.pk} is gone (garbage collection removes "
                              "it after GC_PROTECTION_SECONDS). Upload the bundle again.")
        retry_id = uuid.uuid4()
        retry = IngestJob.objects.create(
            id=retry_id, bundle_name=job.bundle_name, bundle_size=job.bundle_size, bundle_digest=job.bundle_digest,
            expected_digest=job.expected_digest, replace=job.replace, staging_path=area.bundle_location(retry_id),
            created_by=job.created_by, cluster_id=job.cluster_id,
        )
        IngestJob.objects.filter(pk=job.pk).update(
            staging_path="", error_details={**job.error_details, "retried_as": str(retry.pk)}
        )
        # Fresh for GC's protection window, then owned by the new job. A concurrent GC sweep that won the
        # race makes the move fail, and the whole retry with it.
        try:
            area.adopt(job.staging_path, retry_id)
        except FileNotFoundError:
            raise RegistryError(ErrorCode.BUNDLE_GONE, f"The staged bundle of job {job.pk} was just removed by garbage "
                              "collection. Upload the bundle again.") from None
        audit.record(actor, AuditEvent.Action.JOB_RETRY, f"job {job.pk}", result=f"job {retry.pk}")
        return _queue(retry)


def end_what_a_cluster_started(sender, instance: Cluster, **kwargs) -> None:
    """Before a cluster is removed: cancel the open uploads and unfinished jobs of its tokens (which go with it).

    Without its rules nothing would confine them; their rows stay, as records, without a cluster.
    """
    for session_id in UploadSession.objects.filter(cluster=instance, state=UploadSession.State.OPEN).values_list(
            "pk", flat=True):
        _discard_upload(session_id)
    for job in IngestJob.objects.filter(cluster=instance, state__in=IngestJob.UNFINISHED_STATES):
        pipeline.cancel(job)


def connect() -> None:
    pre_delete.connect(end_what_a_cluster_started, sender=Cluster, dispatch_uid="ingest-cluster-removed")
