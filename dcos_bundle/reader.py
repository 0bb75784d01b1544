"""Reads `.dcos` bundles as streams: members are never loaded whole, digests are checked as bytes pass.

Accepts full bundles and the older metadata-only kind (``metadata.json`` and optionally
``manifest.json``). The hostile-input checks (zip bombs, traversal, polyglots…) belong to the
ingest pipeline's inspect stage; this module trusts the ZIP structure and checks content.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from dcos_bundle.digests import CHUNK_SIZE, digest_of
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.streams import ObservedReader

from .format import (
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    OCI_INDEX_MEMBER,
    Manifest,
    asset_member,
    image_blob_member,
)

# JSON members are parsed in memory; anything larger is not a sane metadata document.
MAX_JSON_MEMBER_BYTES = 16 * 1024 * 1024


class VerifyingReader(ObservedReader):
    """Passes a member's bytes through, and at its end checks their digest and count."""

    def __init__(self, stream: BinaryIO, member: str, digest: str, size: int):
        super().__init__(stream, self._count_and_hash)
        self._member = member
        self._digest = digest
        self._size = size
        self._hash = hashlib.sha256()
        self._count = 0
        self.verified = False

    def _count_and_hash(self, chunk) -> None:
        self._hash.update(chunk)
        self._count += len(chunk)

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        if not count and not self.verified:
            self._verify()
        return count

    def _verify(self) -> None:
        actual = digest_of(self._hash.hexdigest())
        if self._count != self._size:
            raise RegistryError(
                ErrorCode.SIZE_MISMATCH,
                f"Member {self._member} holds {self._count} bytes, but {self._size} were declared.",
                member=self._member, expected=self._size, actual=self._count,
            )
        if actual != self._digest:
            raise RegistryError(
                ErrorCode.DIGEST_MISMATCH,
                f"Member {self._member} hashes to {actual}, but {self._digest} was declared.",
                member=self._member, expected=self._digest, actual=actual,
            )
        self.verified = True

@dataclass(frozen=True)
class ImageBlob:
    """A blob of the OCI layout, as a manifest or the index describes it."""

    digest: str
    size: int
    media_type: str


class BundleReader:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as error:
            raise RegistryError(ErrorCode.NOT_A_ZIP, f"{self.path.name} is not a ZIP file: {error}.") from None
        self._names = set(self._zip.namelist())

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def has(self, member: str) -> bool:
        return member in self._names

    def size(self, member: str) -> int:
        """The uncompressed size the ZIP declares for a member."""
        return self._zip.getinfo(member).file_size

    def open(self, member: str) -> BinaryIO:
        if member not in self._names:
            raise RegistryError(ErrorCode.MEMBER_MISSING, f"The bundle has no member {member}.", member=member)
        return self._zip.open(member)

    def open_verified(self, member: str, digest: str, size: int) -> BinaryIO:
        """A member's stream that raises RegistryError at its end unless it has this digest and size."""
        stream = self.open(member)
        declared = self.size(member)
        if declared != size:
            stream.close()
            raise RegistryError(
                ErrorCode.SIZE_MISMATCH,
                f"Member {member} is {declared} bytes in the ZIP, but {size} were declared for it.",
                member=member, expected=size, actual=declared,
            )
        return io.BufferedReader(VerifyingReader(stream, member, digest, size), CHUNK_SIZE)

    def read_json(self, member: str):
        with self.open(member) as stream:
            data = stream.read(MAX_JSON_MEMBER_BYTES + 1)
        if len(data) > MAX_JSON_MEMBER_BYTES:
            raise RegistryError(
                ErrorCode.MEMBER_TOO_LARGE, f"{member} is larger than {MAX_JSON_MEMBER_BYTES} bytes.", member=member
            )
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RegistryError(ErrorCode.INVALID_JSON, f"{member} is not valid JSON: {error}.", member=member) from None

    def metadata(self) -> dict:
        if METADATA_MEMBER not in self._names:
            raise RegistryError(ErrorCode.METADATA_MISSING, f"The bundle has no {METADATA_MEMBER}.", member=METADATA_MEMBER)
        metadata = self.read_json(METADATA_MEMBER)
        if not isinstance(metadata, dict):
            raise RegistryError(ErrorCode.INVALID_METADATA, f"{METADATA_MEMBER} must hold a JSON object.")
        return metadata

    def manifest(self) -> Manifest | None:
        """The inventory, or None for a metadata-only bundle."""
        if MANIFEST_MEMBER not in self._names:
            return None
        try:
            return Manifest.from_json(self.read_json(MANIFEST_MEMBER))
        except (KeyError, TypeError, AttributeError) as error:
            raise RegistryError(
                ErrorCode.INVALID_MANIFEST, f"{MANIFEST_MEMBER} lacks a required field: {error}.", member=MANIFEST_MEMBER
            ) from None

    def oci_index(self) -> dict | None:
        return self.read_json(OCI_INDEX_MEMBER) if OCI_INDEX_MEMBER in self._names else None

    def open_asset(self, digest: str, size: int) -> BinaryIO:
        return self.open_verified(asset_member(digest), digest, size)

    def open_image_blob(self, blob: ImageBlob) -> BinaryIO:
        return self.open_verified(image_blob_member(blob.digest), blob.digest, blob.size)

    def read_image_json(self, blob: ImageBlob):
        with self.open_image_blob(blob) as stream:
            data = stream.read()
        return json.loads(data)

    def image_blobs(self) -> Iterator[tuple[str, ImageBlob, list[ImageBlob]]]:
        """For each image in the index: its reference, its manifest, and the blobs that manifest names."""
        index = self.oci_index() or {"manifests": []}
        for entry in index.get("manifests", []):
            manifest_blob = ImageBlob(entry["digest"], entry["size"], entry["mediaType"])
            manifest = self.read_image_json(manifest_blob)
            blobs = [ImageBlob(item["digest"], item["size"], item["mediaType"])
                     for item in [manifest["config"], *manifest["layers"]]]
            reference = entry.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
            yield reference, manifest_blob, blobs

    def verify(self) -> dict:
        """Stream every asset and image blob, checking each digest and size; return counts."""
        verified_bytes = 0
        manifest = self.manifest()
        assets = manifest.assets if manifest else []
        for asset in assets:
            verified_bytes += _drain(self.open_asset(asset.digest, asset.size))
        images = 0
        seen: set[str] = set()
        for _, manifest_blob, blobs in self.image_blobs():
            images += 1
            verified_bytes += manifest_blob.size
            for blob in blobs:
                if blob.digest not in seen:
                    seen.add(blob.digest)
                    verified_bytes += _drain(self.open_image_blob(blob))
        return {"assets": len(assets), "images": images, "image_blobs": len(seen), "bytes": verified_bytes}


def _drain(stream: BinaryIO) -> int:
    count = 0
    with stream:
        while chunk := stream.read(CHUNK_SIZE):
            count += len(chunk)
    return count
