"""Stage 4: the bundle's assets and image documents go into the blob store, verified as they stream.

Also home of the claim protocol every blob write follows: a job claims a digest (JobBlob)
before it writes, and marks it stored under the Blob row's lock only once the blob is really
there. Cleanup of failed jobs deletes under the same lock, so neither can undo the other.
Every byte of the bundle is checked, also for blobs the store already holds: those are
hashed without being written again.
"""

from __future__ import annotations

import io
import zipfile
from typing import BinaryIO, Callable

from django.db import transaction
from django.db.models import Q

from blobs.drivers import BlobStore, DigestMismatch, SizeMismatch
from blobs.drivers.base import VerifyingCopier
from blobs.models import Blob
from blobs.store import check_store_is_locked, locked_backend, locked_backend_for_recording
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import BlobRole, asset_member, image_blob_member
from dcos_bundle.reader import BundleReader
from dcos_bundle.streams import ObservedReader
from ingest.models import ArrivedLayer, IngestJob, JobBlob, UploadSession
from ingest.progress import StageProgress
from packages_app.models import VersionBlob
from telemetry import metrics

# A blob deleted by a concurrent cleanup between our write and our claim is written again.
WRITE_ATTEMPTS = 3
# An arrived layer claims its blob while the job or upload that owns it goes on.
OWNER_UNFINISHED = Q(job__state__in=IngestJob.UNFINISHED_STATES) | Q(job__isnull=True,
                                                                     upload__state=UploadSession.State.OPEN)


def blob_needed(digest: str, excluding_job: IngestJob | None = None) -> bool:
    """Whether a published version or an unfinished job (other than ``excluding_job``) needs the blob.

    Call it holding the Blob row's lock: that is what makes the answer stay true until the delete.
    """
    claims = JobBlob.objects.filter(digest=digest, job__state__in=IngestJob.UNFINISHED_STATES)
    arrived = ArrivedLayer.objects.filter(OWNER_UNFINISHED, digest=digest, state=ArrivedLayer.State.STORED)
    if excluding_job is not None:
        claims = claims.exclude(job=excluding_job)
        arrived = arrived.exclude(job=excluding_job)
    return VersionBlob.objects.filter(blob_id=digest).exists() or claims.exists() or arrived.exists()


def drop_unneeded(digests, store: BlobStore, excluding_job: IngestJob | None = None) -> None:
    """Delete each blob nothing needs any more (``blob_needed``), under its Blob row's lock."""
    for digest in set(digests):
        with transaction.atomic():
            blob = Blob.objects.select_for_update().filter(digest=digest).first()
            if not blob_needed(digest, excluding_job=excluding_job):
                store.delete(digest)
                if blob is not None:
                    blob.delete()


def member_of(claim: JobBlob) -> str:
    return asset_member(claim.digest) if claim.role == BlobRole.ASSET else image_blob_member(claim.digest)


def _write_or_check(store: BlobStore, digest: str, size: int, source: BinaryIO) -> None:
    if store.exists(digest):
        copier = VerifyingCopier()
        for _ in copier.chunks(source):
            pass
        copier.verify(digest, size)
        metrics.BLOB_DEDUPLICATED_BYTES.inc(size)
    else:
        store.put(source, expected_digest=digest, expected_size=size)


def store_verified(
    blob: Blob,
    member: str,
    store: BlobStore,
    open_source: Callable[[], BinaryIO],
    record: Callable[[], bool],
    after_read: Callable[[], None] = lambda: None,
) -> bool:
    """Write (or check) one blob (an unsaved ``Blob``: digest, size, media type) from ``open_source()``, then
    ``record`` that it is stored, under the Blob row's lock; answer what ``record`` answered.

    ``after_read`` runs once the source was read to its end: the place for checks of what
    was observed on the way (a layer's diff_id).

    A migrate_storage may have moved the registry to another backend since this process started:
    then nothing is written here, and a blob written just before the switch is not recorded (the
    lock is read shared in the recording transaction, so the switch waits for it or it sees the switch).
    """
    for _ in range(WRITE_ATTEMPTS):
        check_store_is_locked(store, locked_backend())
        try:
            with open_source() as source:
                _write_or_check(store, blob.digest, blob.size, source)
        except (DigestMismatch, SizeMismatch) as mismatch:
            raise RegistryError(ErrorCode(mismatch.code), f"Member {member}: {mismatch}", digest=blob.digest,
                                member=member) from None
        except zipfile.BadZipFile as error:
            raise RegistryError(ErrorCode.MEMBER_CORRUPT, f"Member {member} is corrupt: {error}.", member=member) from None
        after_read()
        with transaction.atomic():
            check_store_is_locked(store, locked_backend_for_recording())
            Blob.objects.select_for_update().get_or_create(
                digest=blob.digest, defaults={"size": blob.size, "media_type": blob.media_type}
            )
            if store.exists(blob.digest):
                return record()
    raise RegistryError(ErrorCode.BLOB_STORE_UNSTABLE, f"Blob {blob.digest} kept disappearing while it was stored.")


def store_claimed(
    claim: JobBlob,
    store: BlobStore,
    open_source: Callable[[], BinaryIO],
    after_read: Callable[[], None] = lambda: None,
) -> None:
    """Write (or check) one claimed blob from ``open_source()`` (see ``store_verified``), and mark the claim stored."""
    store_verified(
        Blob(digest=claim.digest, size=claim.size, media_type=claim.media_type), member_of(claim), store, open_source,
        record=lambda: bool(JobBlob.objects.filter(pk=claim.pk).update(stored=True)), after_read=after_read,
    )


def counted(stream: BinaryIO, progress: StageProgress) -> BinaryIO:
    return io.BufferedReader(ObservedReader(stream, lambda chunk: progress.add(len(chunk))))


def store_documents_and_assets(job: IngestJob, reader: BundleReader, store: BlobStore, progress: StageProgress) -> None:
    """Every claimed blob that is not a layer: assets, image manifests and configs."""
    for claim in job.blobs.filter(stored=False).exclude(role=BlobRole.LAYER):
        store_claimed(claim, store, lambda claim=claim: counted(reader.open(member_of(claim)), progress))
    progress.flush()
