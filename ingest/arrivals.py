"""Layers checked while their bundle still arrives.

The web follows the bundle's members as their bytes are staged (``dcos_bundle.zipstream``) and hands
each complete layer to a worker, which checks and stores it in the one pass a job's own layer task
makes (sha256, CRC-32, inflate and hash of the tar, write). When the upload ends, the job's run finds
most layers done and waits only for the ones still being checked.

A head start, never a way around a check: the job still inspects and validates the whole bundle,
and takes a layer checked early only if it is the very member the inspected central directory names
(same offset, size and CRC), stored uncompressed, its bytes hashing to its name and matching the CRC,
and decompressing to the diff_id its image config declares (``adopt``). Anything else (a deflated
layer, an archive the scanner cannot follow, a layer an early check refused) takes the job's own path,
which says what is wrong. Staging in S3 gets no head start: a multipart upload's parts cannot be read
before it is complete.

An arrived layer is owned by the job receiving the bundle, or by the resumable upload until its commit
names the job; once stored it claims its blob (``stages.store.blob_needed``) until its owner ends.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Callable

import structlog
from django.conf import settings
from django.db import transaction

from blobs.models import Blob
from blobs.store import blob_store
from dcos_bundle.deflate import crc32
from dcos_bundle.digests import digest_of, parse_digest
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import OCI_BLOBS_DIR, OCI_LAYER_GZIP_MEDIA_TYPE, BlobRole, image_blob_member
from dcos_bundle.streams import ObservedReader, RangeReader
from dcos_bundle.zipstream import ArrivedMember, MemberScanner
from ingest import staging
from ingest.models import ArrivedLayer, IngestJob, JobBlob, UploadSession
from ingest.stages.inspect import Inventory
from ingest.stages.store import OWNER_UNFINISHED, drop_unneeded, store_verified
from ingest.stages.verify_images import DiffIdCheck, check_declared_diff_ids
from telemetry import metrics

logger = logging.getLogger(__name__)


def _layer_digest(member: ArrivedMember) -> str | None:
    """The digest a member names, if it is an image blob worth a task of its own: stored, and big enough."""
    if not member.stored or member.compressed_size < settings.INGEST_ARRIVAL_MIN_BYTES:
        return None
    digest = digest_of(member.name.removeprefix(OCI_BLOBS_DIR))
    try:
        parse_digest(digest)
    except ValueError:
        return None
    return digest if member.name == image_blob_member(digest) else None


class ArrivalWatch:
    """The web's side: follows an upload's members as its bytes are staged at ``location``.

    ``feed`` every byte in order, once it is written where workers read it; ``hand_over`` sends the
    layers completed so far to the workers. A resumable upload hands over only once its chunk is
    recorded (a chunk that breaks off is written again, maybe otherwise), and keeps ``state()`` for the next.
    """

    def __init__(self, location: str, send: Callable[[int], None], *, job: IngestJob | None = None,
                 upload: UploadSession | None = None, state: dict | None = None):
        self._location = location
        self._send = send
        self._owner = {"job": job} if job is not None else {"upload": upload}
        self._scanner = MemberScanner(state)
        self._arrived: list[tuple[str, ArrivedMember]] = []

    def feed(self, chunk) -> None:
        for member in self._scanner.feed(chunk):
            digest = _layer_digest(member)
            if digest is not None:
                self._arrived.append((digest, member))

    def pass_on(self, chunk) -> None:
        """``feed`` and ``hand_over`` at once: for a bundle whose bytes all arrive in one request."""
        self.feed(chunk)
        self.hand_over()

    def state(self) -> dict:
        return self._scanner.state()

    def hand_over(self) -> None:
        arrived, self._arrived = self._arrived, []
        for digest, member in arrived:
            arrival, created = ArrivedLayer.objects.get_or_create(
                location=self._location, data_offset=member.data_offset,
                defaults={"member": member.name, "digest": digest, "size": member.compressed_size, "crc": member.crc,
                          **self._owner},
            )
            if created:
                self._send(arrival.pk)


@dataclass
class _Checks:
    """What one pass over an arrived layer's bytes observes besides its digest: its CRC-32 and its diff_id."""

    inflation: DiffIdCheck
    crc: int = 0

    def observe(self, chunk) -> None:
        self.crc = crc32(chunk, self.crc)
        self.inflation.observe(chunk)


def check(arrival_id: int) -> ArrivedLayer | None:
    """The worker's side: check and store one arrived layer; answer it as it ended (stored or refused), or None
    if there was nothing to do (it was checked already, or its owner ended)."""
    arrival = ArrivedLayer.objects.filter(pk=arrival_id, state=ArrivedLayer.State.CHECKING).first()
    if arrival is None:
        return None
    owner = {"job_id": str(arrival.job_id)} if arrival.job_id else {"upload_id": str(arrival.upload_id)}
    with structlog.contextvars.bound_contextvars(**owner):
        return _check(arrival)


def _check(arrival: ArrivedLayer) -> ArrivedLayer | None:
    checks = _Checks(DiffIdCheck(arrival.digest, arrival.member))

    def open_source():
        nonlocal checks
        checks = _Checks(DiffIdCheck(arrival.digest, arrival.member))
        member = RangeReader(staging.open_bundle(arrival.location), arrival.data_offset, arrival.size)
        return io.BufferedReader(ObservedReader(member, checks.observe))

    def after_read() -> None:
        arrival.diff_id = checks.inflation.diff_id()
        if checks.crc != arrival.crc:
            raise RegistryError(ErrorCode.MEMBER_CORRUPT, f"Member {arrival.member} does not match its CRC-32.")

    def record() -> bool:
        # Only while the owner goes on: a cancel that came first deleted the row, or ended its owner.
        return bool(ArrivedLayer.objects.filter(OWNER_UNFINISHED, pk=arrival.pk, state=ArrivedLayer.State.CHECKING)
                    .update(state=ArrivedLayer.State.STORED, diff_id=arrival.diff_id))

    store = blob_store()
    try:
        stored = store_verified(Blob(digest=arrival.digest, size=arrival.size, media_type=OCI_LAYER_GZIP_MEDIA_TYPE),
                                arrival.member, store, open_source, record, after_read)
    except (RegistryError, FileNotFoundError) as error:
        # The job's own check of this layer reports what is wrong with it, in full.
        logger.info("Arrived layer %s left to its job: %s", arrival.digest, error)
        return refuse(arrival.pk)
    if not stored:
        ArrivedLayer.objects.filter(pk=arrival.pk).delete()
        drop_unneeded([arrival.digest], store)
        return None
    metrics.INGEST_ARRIVED_LAYERS.labels("stored").inc()
    # Which worker did which layer, as the job's own layer tasks log it.
    logger.info("Layer %s verified and stored", arrival.digest)
    return ArrivedLayer.objects.filter(pk=arrival.pk).first()


def refuse(arrival_id: int) -> ArrivedLayer | None:
    """Leave an arrived layer to its job's own check, with what a check may have stored of it."""
    arrival = ArrivedLayer.objects.filter(pk=arrival_id).first()
    if arrival is None:
        return None
    if ArrivedLayer.objects.filter(pk=arrival.pk, state=ArrivedLayer.State.CHECKING).update(
            state=ArrivedLayer.State.REFUSED):
        metrics.INGEST_ARRIVED_LAYERS.labels("refused").inc()
    drop_unneeded([arrival.digest], blob_store())
    return ArrivedLayer.objects.filter(pk=arrival.pk).first()


def _matches(arrival: ArrivedLayer, inventory: Inventory) -> bool:
    """Whether the arrived bytes are the member the inspected archive names: its whole data, where it reads it."""
    member = inventory.members.get(arrival.member)
    return (member is not None and member.stored and member.data_offset == arrival.data_offset
            and member.compressed_size == arrival.size and member.crc == arrival.crc)


def adopt(job: IngestJob, inventory: Inventory) -> tuple[int, set[str]]:
    """The job's run takes the layers checked early: marks their claims stored. Answers the bytes it took, and the
    digests still being checked early, which the job now awaits (``pipeline.check_arrived_layer`` ends the wait)."""
    adopted, awaited = 0, set()
    with transaction.atomic():
        arrivals = ArrivedLayer.objects.select_for_update().filter(job=job).exclude(state=ArrivedLayer.State.REFUSED)
        for arrival in arrivals:
            claims = list(job.blobs.filter(role=BlobRole.LAYER, digest=arrival.digest, stored=False))
            if not claims or not _matches(arrival, inventory):
                continue
            if arrival.state == ArrivedLayer.State.STORED:
                adopted += take(arrival, claims)
            else:
                ArrivedLayer.objects.filter(pk=arrival.pk).update(awaited=True)
                awaited.add(arrival.digest)
    return adopted, awaited


def take(arrival: ArrivedLayer, claims: list[JobBlob]) -> int:
    """Mark a job's claims of a stored arrived layer stored (DIFF_ID_MISMATCH if a config declares another diff_id);
    answer the bytes taken."""
    check_declared_diff_ids(claims, arrival.diff_id)
    JobBlob.objects.filter(pk__in=[claim.pk for claim in claims]).update(stored=True)
    return arrival.size


def _release(arrived, excluding_job: IngestJob | None = None) -> None:
    """The ``arrived`` layers go, and their blobs if nothing else needs them."""
    digests = list(arrived.values_list("digest", flat=True))
    arrived.delete()
    drop_unneeded(digests, blob_store(), excluding_job=excluding_job)


def release_unused(job: IngestJob) -> None:
    """A published job: the layers that arrived but were not taken (no image used them) go, as their blobs."""
    _release(ArrivedLayer.objects.filter(job=job), excluding_job=job)


def release_upload(session: UploadSession) -> None:
    """An upload that ends without a job: its arrived layers go, and their blobs if nothing else needs them."""
    _release(ArrivedLayer.objects.filter(upload=session, job__isnull=True))
