"""Docker images inside a bundle, as an OCI image layout under ``images/``.

Layers are spooled to files on disk (never held in memory) and gzip-compressed (in parallel blocks, by
``deflate.gzip_parallel``) while both the compressed digest and the uncompressed one (the diff_id) are
computed in the same pass.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dcos_bundle.deflate import GzipInflater, gzip_parallel
from dcos_bundle.digests import CHUNK_SIZE, HashingCopier, HashingWriter, digest_bytes

from .format import (
    OCI_CONFIG_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE,
    OCI_INDEX_MEMBER,
    OCI_LAYER_GZIP_MEDIA_TYPE,
    OCI_LAYOUT_CONTENT,
    OCI_LAYOUT_MEMBER,
    OCI_MANIFEST_MEDIA_TYPE,
    REF_NAME_ANNOTATION,
    image_blob_member,
)
from .writer import BundleWriter

GZIP_MAGIC = b"\x1f\x8b"
# Level 6 is gzip's own default: a fair trade between bundle size and build time.
GZIP_LEVEL = 6


def canonical_json(document) -> bytes:
    """The exact bytes a JSON blob is stored and addressed as."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class SpooledLayer:
    """A gzip layer blob in a file on disk, with its digests."""

    path: Path
    digest: str
    size: int
    diff_id: str

    def descriptor(self) -> dict:
        return {"mediaType": OCI_LAYER_GZIP_MEDIA_TYPE, "digest": self.digest, "size": self.size}


def spool_layer(stream: BinaryIO, directory: str | os.PathLike) -> SpooledLayer:
    """Copy a layer to a gzip file in ``directory``, whether the stream is a plain tar or already gzip.

    A plain tar is compressed (its own sha256 is the diff_id); gzip content is kept as it is and
    decompressed on the side to compute the diff_id. Either way the stream is read once.
    """
    fd, name = tempfile.mkstemp(dir=directory, prefix="layer-", suffix=".tar.gz")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            sink = HashingWriter(file)
            uncompressed = HashingCopier()
            first = stream.read(CHUNK_SIZE)
            if first.startswith(GZIP_MAGIC):
                _copy_gzip(first, stream, sink, uncompressed)
            else:
                _compress(first, stream, sink, uncompressed)
        return SpooledLayer(path, sink.digest, sink.size, uncompressed.digest)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _compress(first: bytes, stream: BinaryIO, sink: HashingWriter, uncompressed: HashingCopier) -> None:
    gzip_parallel(stream, sink.write, uncompressed.update, GZIP_LEVEL, first=first)


def _copy_gzip(first: bytes, stream: BinaryIO, sink: HashingWriter, uncompressed: HashingCopier) -> None:
    inflater = GzipInflater()
    chunk = first
    while chunk:
        sink.write(chunk)
        for piece in inflater.inflate(chunk):
            uncompressed.update(piece)
        chunk = stream.read(CHUNK_SIZE)


@dataclass
class ImageSet:
    """The images of one bundle: blobs shared between images are written once."""

    layers: dict[str, SpooledLayer] = field(default_factory=dict)
    json_blobs: dict[str, bytes] = field(default_factory=dict)
    index: list[dict] = field(default_factory=list)

    def add_image(self, reference: str, config: dict, layers: list[SpooledLayer]) -> str:
        """Add one image; return its manifest digest.

        ``config`` is the image config (Docker's and OCI's share this format); its
        ``rootfs.diff_ids`` must list the layers' diff_ids in order.
        """
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if diff_ids != [layer.diff_id for layer in layers]:
            raise ValueError(
                f"Image {reference}: config lists diff_ids {diff_ids} but the layers hash to "
                f"{[layer.diff_id for layer in layers]}."
            )
        config_bytes = canonical_json(config)
        config_digest = self._add_json_blob(config_bytes)
        for layer in layers:
            self.layers.setdefault(layer.digest, layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": OCI_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_bytes)},
            "layers": [layer.descriptor() for layer in layers],
        }
        manifest_bytes = canonical_json(manifest)
        manifest_digest = self._add_json_blob(manifest_bytes)
        entry = {
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "annotations": {REF_NAME_ANNOTATION: reference},
        }
        if config.get("os") and config.get("architecture"):
            entry["platform"] = {"architecture": config["architecture"], "os": config["os"]}
        self.index.append(entry)
        return manifest_digest

    def _add_json_blob(self, data: bytes) -> str:
        digest = digest_bytes(data)
        self.json_blobs[digest] = data
        return digest

    def write_into(self, writer: BundleWriter) -> None:
        if not self.index:
            return
        writer.write_json(OCI_LAYOUT_MEMBER, OCI_LAYOUT_CONTENT)
        writer.write_json(
            OCI_INDEX_MEMBER, {"schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": self.index}
        )
        for digest, data in self.json_blobs.items():
            writer.write_bytes(image_blob_member(digest), data, compress=True)
        for digest, layer in self.layers.items():
            writer.write_file(image_blob_member(digest), layer.path)
