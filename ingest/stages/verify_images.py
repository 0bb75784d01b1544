"""Stage 3: every image's manifest, config and layers are what they claim to be.

Manifests and configs are small: they are read (never more than a JSON document may be), hashed
and parsed here, their descriptors and diff_ids checked, and every blob the images need is
claimed for the job. Layers are big: each is checked by its own task (so layers
spread over all workers), in ONE pass over its bytes: the compressed digest and size are checked
while the layer streams into the blob store, and the stream is inflated on the side to check
that it hashes to the diff_id the image config declares.
"""

from __future__ import annotations

import io

from blobs.drivers import BlobStore
from dcos_bundle.deflate import GzipError, GzipInflater
from dcos_bundle.digests import HashingCopier, checked_digest
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import BlobRole, image_blob_member
from dcos_bundle.reader import BundleReader, ImageBlob, parse_descriptor
from dcos_bundle.streams import ObservedReader
from ingest.models import IngestJob, JobBlob
from ingest.progress import StageProgress

from .store import counted, store_claimed
from .validate import BundlePlan, PlannedBlob

GZIP_LAYER_MEDIA_TYPES = (
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
)
CONFIG_MEDIA_TYPES = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")


def _read_document(reader: BundleReader, blob: PlannedBlob, what: str) -> dict:
    return reader.read_image_json(ImageBlob(blob.digest, blob.size, blob.media_type), what)


def plan_images(job: IngestJob, reader: BundleReader, plan: BundlePlan) -> int:
    """Check every image's manifest and config, claim every blob of the bundle; return the layer bytes."""
    claims: dict[tuple, PlannedBlob] = {}

    def claim(blob: PlannedBlob) -> None:
        claims.setdefault((blob.digest, blob.role, blob.name), blob)

    for asset in plan.assets:
        claim(asset)
    for manifest_blob in plan.image_manifests:
        reference = manifest_blob.name
        manifest = _read_document(reader, manifest_blob, f"The manifest of image {reference}")
        claim(manifest_blob)
        config = parse_descriptor(manifest.get("config"), f"The config descriptor of image {reference}",
                                  reference=reference)
        if config.media_type not in CONFIG_MEDIA_TYPES:
            raise RegistryError(ErrorCode.UNSUPPORTED_IMAGE, f"Image {reference}: config type {config.media_type!r} is "
                                "not an image config.", reference=reference)
        config_blob = PlannedBlob(config.digest, config.size, config.media_type, BlobRole.CONFIG, reference,
                                  image_blob_member(config.digest))
        config_document = _read_document(reader, config_blob, f"The config of image {reference}")
        claim(config_blob)
        layers = manifest.get("layers")
        rootfs = config_document.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(layers, list) or not isinstance(diff_ids, list) or len(layers) != len(diff_ids):
            raise RegistryError(
                ErrorCode.DIFF_IDS_MISMATCH,
                f"Image {reference}: the manifest lists {len(layers) if isinstance(layers, list) else 'no'} layers, "
                f"the config {len(diff_ids) if isinstance(diff_ids, list) else 'no'} diff_ids.",
                reference=reference,
            )
        for number, (layer, diff_id) in enumerate(zip(layers, diff_ids)):
            descriptor = parse_descriptor(layer, f"Layer descriptor {number} of image {reference}", reference=reference)
            if descriptor.media_type not in GZIP_LAYER_MEDIA_TYPES:
                raise RegistryError(ErrorCode.UNSUPPORTED_IMAGE, f"Image {reference}: layer type {descriptor.media_type!r} "
                                    "is not a gzip layer.", reference=reference, layer=descriptor.digest)
            diff_id = checked_digest(diff_id, ErrorCode.INVALID_DIFF_ID, f"Image {reference}: diff_id {number}",
                                     reference=reference)
            member = image_blob_member(descriptor.digest)
            if not reader.has(member):
                raise RegistryError(ErrorCode.MEMBER_MISSING, f"Image {reference}: layer {descriptor.digest} is not in the "
                                    "bundle.", reference=reference, layer=descriptor.digest, member=member)
            if reader.size(member) != descriptor.size:
                raise RegistryError(
                    ErrorCode.SIZE_MISMATCH, f"Image {reference}: layer {descriptor.digest} is {reader.size(member)} "
                    f"bytes in the bundle, but its descriptor says {descriptor.size}.",
                    reference=reference, layer=descriptor.digest, expected=descriptor.size, actual=reader.size(member),
                )
            claim(PlannedBlob(descriptor.digest, descriptor.size, descriptor.media_type, BlobRole.LAYER, reference,
                              member, diff_id))

    JobBlob.objects.bulk_create(
        [JobBlob(job=job, digest=blob.digest, size=blob.size, media_type=blob.media_type, role=blob.role,
                 name=blob.name, diff_id=blob.diff_id) for blob in claims.values()],
        ignore_conflicts=True,
    )
    return sum(blob.size for blob in claims.values() if blob.role == BlobRole.LAYER)


class DiffIdCheck:
    """Inflates a gzip layer as it passes and hashes the result, to compare with its diff_id.

    Output is produced in bounded pieces: a layer that inflates to terabytes costs time, not memory.
    """

    def __init__(self, digest: str, reference: str):
        self._digest = digest
        self._reference = reference
        self._uncompressed = HashingCopier()
        self._inflater = GzipInflater()
        self._error: RegistryError | None = None

    def observe(self, chunk) -> None:
        # After corrupt gzip the rest still streams through, so a wrong digest is reported first.
        if self._error is not None:
            return
        try:
            for piece in self._inflater.inflate(chunk):
                self._uncompressed.update(piece)
        except GzipError as error:
            self._error = self._corrupt(f"it is not valid gzip ({error})")

    def diff_id(self) -> str:
        """What the layer decompressed to; LAYER_CORRUPT if it is not one whole gzip stream."""
        if self._error is not None:
            raise self._error
        if not self._inflater.complete:
            raise self._corrupt("its gzip stream is truncated")
        return self._uncompressed.digest

    def check(self, declared: str) -> None:
        actual = self.diff_id()
        if actual != declared:
            raise RegistryError(
                ErrorCode.DIFF_ID_MISMATCH,
                f"Layer {self._digest} of image {self._reference} decompresses to {actual}, but the image "
                f"config declares {declared}.",
                layer=self._digest, reference=self._reference, expected=declared, actual=actual,
            )

    def _corrupt(self, why: str) -> RegistryError:
        return RegistryError(
            ErrorCode.LAYER_CORRUPT, f"Layer {self._digest} of image {self._reference}: {why}.",
            layer=self._digest, reference=self._reference,
        )


def check_declared_diff_ids(claims, actual: str) -> None:
    """The same layer in several images: every config must declare the diff_id it decompresses to."""
    for claim in claims:
        if claim.diff_id != actual:
            raise RegistryError(
                ErrorCode.DIFF_ID_MISMATCH,
                f"Layer {claim.digest} of image {claim.name}: the config declares {claim.diff_id}, but the layer "
                f"decompresses to {actual}.",
                layer=claim.digest, reference=claim.name, expected=claim.diff_id, actual=actual,
            )


def verify_and_store_layer(claim: JobBlob, reader: BundleReader, store: BlobStore, progress: StageProgress) -> None:
    check = DiffIdCheck(claim.digest, claim.name)

    def open_source():
        # A fresh check for every attempt: a write may be retried from the start.
        nonlocal check
        check = DiffIdCheck(claim.digest, claim.name)
        inflating = io.BufferedReader(ObservedReader(reader.open(image_blob_member(claim.digest)), check.observe))
        return counted(inflating, progress)

    store_claimed(claim, store, open_source, after_read=lambda: check.check(claim.diff_id))
    progress.flush()
