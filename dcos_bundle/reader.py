"""Reads `.dcos` bundles as streams: members are never loaded whole, digests are checked as bytes pass.

Accepts full bundles and the older metadata-only kind (``metadata.json`` and optionally
``manifest.json``). The hostile-input checks (zip bombs, traversal, polyglots…) belong to the
ingest pipeline's inspect stage; this module trusts the ZIP structure and checks content.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from dcos_bundle.digests import CHUNK_SIZE, HashingCopier, checked_digest
from dcos_bundle.documents import MAX_JSON_BYTES, parse_json, read_capped, too_large
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.streams import ObservedReader

from .format import (
    MANIFEST_MEMBER,
    MAX_BLOB_SIZE,
    METADATA_MEMBER,
    OCI_INDEX_MEMBER,
    REF_NAME_ANNOTATION,
    Manifest,
    asset_member,
    image_blob_member,
    is_blob_size,
)


class VerifyingReader(ObservedReader):
    """Passes a member's bytes through, and at its end checks their digest and count."""

    def __init__(self, stream: BinaryIO, member: str, digest: str, size: int):
        self._copier = HashingCopier()
        super().__init__(stream, self._copier.update)
        self._member = member
        self._digest = digest
        self._size = size
        self.verified = False

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        if not count and not self.verified:
            self._verify()
        return count

    def _verify(self) -> None:
        actual, count = self._copier.hashed
        if count != self._size:
            raise RegistryError(
                ErrorCode.SIZE_MISMATCH,
                f"Member {self._member} holds {count} bytes, but {self._size} were declared.",
                member=self._member, expected=self._size, actual=count,
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


def parse_descriptor(value, what: str, **details) -> ImageBlob:
    """An OCI descriptor as the registry can address and store it: a sha256 digest, a 64-bit size, a media type.

    ``what`` names it in messages ("The config descriptor of image example/hello:1.0").
    """
    if not isinstance(value, dict):
        raise RegistryError(ErrorCode.INVALID_DESCRIPTOR, f"{what} is not a descriptor (a JSON object).", **details)
    if "digest" not in value:
        raise RegistryError(ErrorCode.INVALID_DESCRIPTOR, f"{what} has no digest.", **details)
    digest = checked_digest(value["digest"], ErrorCode.INVALID_DESCRIPTOR, f"{what}: digest", **details)
    size = value.get("size")
    if not is_blob_size(size):
        shown = repr(size) if len(repr(size)) <= 40 else repr(size)[:30] + "…"
        raise RegistryError(
            ErrorCode.INVALID_DESCRIPTOR, f"{what}: size {shown} is not a number of bytes from 0 to {MAX_BLOB_SIZE}.",
            **details,
        )
    media_type = value.get("mediaType", "")
    if not isinstance(media_type, str):
        raise RegistryError(ErrorCode.INVALID_DESCRIPTOR, f"{what}: mediaType must be a string.", **details)
    return ImageBlob(digest, size, media_type)


def reference_of(entry: dict) -> str | None:
    """The image reference an index entry is annotated with, if any."""
    annotations = entry.get("annotations", {})
    if not isinstance(annotations, dict):
        raise RegistryError(ErrorCode.INVALID_IMAGE, f"{OCI_INDEX_MEMBER}: an entry's annotations must be an object.",
                            member=OCI_INDEX_MEMBER)
    reference = annotations.get(REF_NAME_ANNOTATION)
    return reference if isinstance(reference, str) else None


class BundleReader:
    def __init__(self, bundle: str | Path | BinaryIO):
        """``bundle``: a path, or a seekable file (which closing the reader leaves open)."""
        name = Path(bundle).name if isinstance(bundle, (str, os.PathLike)) else "The bundle"
        try:
            self._zip = zipfile.ZipFile(bundle)
        except (zipfile.BadZipFile, OSError) as error:
            raise RegistryError(ErrorCode.NOT_A_ZIP, f"{name} is not a ZIP file: {error}.") from None
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
        """A JSON member, parsed; refused unread when the ZIP declares it larger than a document may be."""
        if member in self._names and self.size(member) > MAX_JSON_BYTES:
            raise too_large(member, self.size(member), member=member)
        with self.open(member) as stream:
            data = read_capped(stream, member, member=member)
        return parse_json(data, member, member=member)

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
        return Manifest.from_json(self.read_json(MANIFEST_MEMBER))

    def oci_index(self) -> dict | None:
        """The image index, an object whose ``manifests`` are objects (descriptors), or None without images."""
        if OCI_INDEX_MEMBER not in self._names:
            return None
        index = self.read_json(OCI_INDEX_MEMBER)
        manifests = index.get("manifests", []) if isinstance(index, dict) else None
        if not isinstance(manifests, list) or not all(isinstance(entry, dict) for entry in manifests):
            raise RegistryError(
                ErrorCode.INVALID_IMAGE, f"{OCI_INDEX_MEMBER} must be an object whose manifests are an array of objects.",
                member=OCI_INDEX_MEMBER,
            )
        return index

    def open_asset(self, digest: str, size: int) -> BinaryIO:
        return self.open_verified(asset_member(digest), digest, size)

    def open_image_blob(self, blob: ImageBlob) -> BinaryIO:
        return self.open_verified(image_blob_member(blob.digest), blob.digest, blob.size)

    def read_image_json(self, blob: ImageBlob, what: str = "") -> dict:
        """An image manifest or config: a JSON object, verified against its digest, never more than the cap held."""
        member = image_blob_member(blob.digest)
        what = what or f"Image blob {blob.digest}"
        if blob.size > MAX_JSON_BYTES:
            raise too_large(what, blob.size, member=member)
        with self.open_image_blob(blob) as stream:
            # Reading past the declared size reaches the end: the digest is checked there.
            data = read_capped(stream, what, member=member)
        document = parse_json(data, what, member=member)
        if not isinstance(document, dict):
            raise RegistryError(ErrorCode.INVALID_IMAGE, f"{what} must be a JSON object.", member=member)
        return document

    def image_blobs(self) -> Iterator[tuple[str, ImageBlob, list[ImageBlob]]]:
        """For each image in the index: its reference, its manifest, and the blobs that manifest names."""
        index = self.oci_index() or {"manifests": []}
        for entry in index.get("manifests", []):
            reference = reference_of(entry) or ""
            manifest_blob = parse_descriptor(entry, f"The index entry of image {reference}", reference=reference)
            manifest = self.read_image_json(manifest_blob, f"The manifest of image {reference}")
            layers = manifest.get("layers", [])
            if not isinstance(layers, list):
                raise RegistryError(ErrorCode.INVALID_IMAGE, f"Image {reference}: layers must be an array.",
                                    reference=reference)
            blobs = [parse_descriptor(manifest.get("config"), f"The config descriptor of image {reference}",
                                      reference=reference)]
            blobs += [parse_descriptor(layer, f"Layer descriptor {number} of image {reference}", reference=reference)
                      for number, layer in enumerate(layers)]
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
