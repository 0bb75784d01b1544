"""Transfer sets: what carries a catalogue from one registry to another across an air gap.

A transfer set is a directory or ``s3://bucket/prefix`` (the same targets as a backup,
``operations.backup.open_location``) holding::

    data/volume-000000 …   the blob stream: every carried blob's bytes once, one after another, cut into volumes
    transfer.json          the manifest: the versions (metadata as stored), every blob they use, where each carried
                           blob starts in the stream, the volumes
    SHA256SUMS             written last: the sha256 of transfer.json and of every volume, as ``sha256sum -c`` reads

The stream is written strictly in order, so a transfer set can be written to media as it is made, and the
volumes have a fixed size (``--volume-size``; the last is shorter). A reader trusts nothing until
``transfer.json`` hashes to what SHA256SUMS says, and every blob is checked against its digest as it is read.
``inventory`` files say what a registry holds, so that an export carries only what the destination lacks.
"""

from __future__ import annotations

import io
import json
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from django.utils import timezone

from blobs.models import Blob
from dcos_bundle.digests import HashingWriter, digest_bytes, parse_digest
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.streams import IterableReader
from operations.backup import BackupLocation
from packages_app.models import PackageVersion, VersionBlob

FORMAT = "dcos-registry-transfer"
FORMAT_VERSION = 1
INVENTORY_FORMAT = "dcos-registry-inventory"
MANIFEST_NAME = "transfer.json"
CHECKSUMS_NAME = "SHA256SUMS"
VOLUME_DIR = "data"
# The largest transfer.json or inventory read: both are held in memory (about 300 bytes a blob, 2 KiB a version).
MAX_DOCUMENT_BYTES = 1024**3


def volume_name(number: int) -> str:
    return f"{VOLUME_DIR}/volume-{number:06d}"


# -- writing -----------------------------------------------------------------------------------------------------

class VolumeWriter:
    """The blob stream, written in order into volumes of at most ``volume_size`` bytes (None: one volume)."""

    def __init__(self, location: BackupLocation, volume_size: int | None):
        self._location = location
        self._volume_size = volume_size
        self._stack: ExitStack | None = None
        self._file: HashingWriter | None = None
        self.offset = 0
        # name, size and sha256 of each finished volume
        self.volumes: list[dict] = []

    def write(self, data) -> None:
        view = memoryview(data)
        while len(view):
            if self._file is None or (self._volume_size and self._file.size == self._volume_size):
                self._next_volume()
            room = len(view) if not self._volume_size else min(len(view), self._volume_size - self._file.size)
            self._file.write(view[:room])
            self.offset += room
            view = view[room:]

    def _next_volume(self) -> None:
        self._finish_volume()
        self._stack = ExitStack()
        self._file = HashingWriter(self._stack.enter_context(self._location.create(volume_name(len(self.volumes)))))

    def _finish_volume(self) -> None:
        if self._file is not None:
            self._stack.close()
            self.volumes.append({"name": volume_name(len(self.volumes)), "size": self._file.size,
                                 "sha256": self._file.digest})
            self._stack = self._file = None

    def close(self) -> None:
        """Finish the last volume (only a complete volume appears under its name)."""
        self._finish_volume()

    def abort(self) -> None:
        """Remove what was written (call it while handling the exception that stopped the export): the volume being
        written never appears under its name, and the finished ones are removed."""
        if self._stack is not None:
            self._stack.__exit__(*sys.exc_info())
            self._stack = self._file = None
        for volume in self.volumes:
            self._location.remove(volume["name"])
        self.volumes = []


def checksums_text(entries: list[tuple[str, str]]) -> bytes:
    """SHA256SUMS: one ``<hex>  <name>`` line per (digest, name), as ``sha256sum -c`` checks it."""
    return "".join(f"{parse_digest(digest)}  {name}\n" for digest, name in entries).encode()


def write_document(location: BackupLocation, name: str, document: dict) -> str:
    """Write a JSON document; returns its sha256."""
    data = json.dumps(document, indent=1).encode()
    with location.create(name) as file:
        file.write(data)
    return digest_bytes(data)


# -- reading -----------------------------------------------------------------------------------------------------

def _invalid(message: str, **details) -> RegistryError:
    return RegistryError(ErrorCode.TRANSFER_INVALID, message, **details)


def _damaged(message: str, **details) -> RegistryError:
    return RegistryError(ErrorCode.TRANSFER_DAMAGED, message + " Nothing was imported.", **details)


def _read_capped(location: BackupLocation, name: str) -> bytes:
    try:
        with location.open(name) as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise _invalid(f"{location.url} holds no complete transfer set: {name} is missing (a transfer set is complete "
                       f"once {CHECKSUMS_NAME} is written).", file=name) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _invalid(f"{name} in {location.url} is larger than {MAX_DOCUMENT_BYTES} bytes.", file=name)
    return data


def read_checksums(location: BackupLocation) -> dict[str, str]:
    """SHA256SUMS as {name: sha256:<hex>}."""
    sums = {}
    for line in _read_capped(location, CHECKSUMS_NAME).decode("utf-8", "replace").splitlines():
        hex_digest, _, name = line.partition("  ")
        if len(hex_digest) != 64 or not name:
            raise _damaged(f"{CHECKSUMS_NAME} in {location.url} has a line that is no checksum: {line[:80]!r}.")
        sums[name.lstrip("*")] = f"sha256:{hex_digest}"
    return sums


@dataclass
class TransferSet:
    """A transfer set whose manifest matched its checksum: the versions, the carried blobs, the volumes."""

    location: BackupLocation
    manifest: dict
    checksum: str
    carried: dict[str, dict] = field(default_factory=dict)

    @property
    def versions(self) -> list[dict]:
        return self.manifest["versions"]

    def open_blob(self, digest: str) -> BinaryIO:
        """The carried blob's bytes from the stream, across volumes (the caller checks them against the digest)."""
        blob = self.carried[digest]
        return IterableReader(self._span(blob["offset"], blob["size"]))

    def _span(self, offset: int, size: int) -> Iterator[bytes]:
        start = 0
        for volume in self.manifest["volumes"]:
            end = start + volume["size"]
            if size and offset < end:
                length = min(size, end - offset)
                try:
                    piece = self.location.open_range(volume["name"], offset - start, length)
                except FileNotFoundError:
                    raise _damaged(f"Volume {volume['name']} is missing from {self.location.url}.",
                                   volume=volume["name"]) from None
                with piece:
                    while chunk := piece.read(io.DEFAULT_BUFFER_SIZE * 128):
                        yield chunk
                offset, size = offset + length, size - length
            start = end


def open_transfer(location: BackupLocation) -> TransferSet:
    """The transfer set at ``location``, its manifest checked against SHA256SUMS before anything in it is trusted."""
    sums = read_checksums(location)
    data = _read_capped(location, MANIFEST_NAME)
    actual = digest_bytes(data)
    if sums.get(MANIFEST_NAME) != actual:
        raise _damaged(f"{MANIFEST_NAME} in {location.url} hashes to {actual}, but {CHECKSUMS_NAME} says "
                       f"{sums.get(MANIFEST_NAME, 'nothing')}: the transfer set was changed or damaged on its way.",
                       file=MANIFEST_NAME, expected=sums.get(MANIFEST_NAME), actual=actual)
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise _invalid(f"{MANIFEST_NAME} in {location.url} is not JSON: {error}.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _invalid(f"{location.url} is not a registry transfer set ({MANIFEST_NAME} has no format {FORMAT!r}).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _invalid(f"{MANIFEST_NAME} in {location.url} has format version {manifest.get('format_version')!r}; "
                       f"this registry reads format version {FORMAT_VERSION}.")
    stream_size = 0
    for volume in manifest["volumes"]:
        if sums.get(volume["name"]) != volume["sha256"]:
            raise _damaged(f"{CHECKSUMS_NAME} and {MANIFEST_NAME} disagree about {volume['name']}.",
                           volume=volume["name"])
        stream_size += volume["size"]
    carried = {blob["digest"]: blob for blob in manifest["blobs"]}
    if any(blob["offset"] + blob["size"] > stream_size for blob in carried.values()):
        raise _damaged(f"{MANIFEST_NAME} places blobs beyond the end of the volumes.")
    return TransferSet(location, manifest, actual, carried)


# -- what a registry holds ---------------------------------------------------------------------------------------

def held_blobs() -> Iterator[tuple[str, int]]:
    """(digest, size) of every blob a published version uses: what a destination keeps (GC removes the others)."""
    return Blob.objects.filter(digest__in=VersionBlob.objects.values("blob_id")).order_by("digest").values_list(
        "digest", "size").iterator(2000)


def inventory() -> dict:
    """What the registry holds, for an export on the other side of the gap to leave out."""
    return {
        "format": INVENTORY_FORMAT, "format_version": FORMAT_VERSION, "created_at": timezone.now().isoformat(),
        "blobs": [{"digest": digest, "size": size} for digest, size in held_blobs()],
        "versions": [{"package": package, "version": version, "content_digest": content}
                     for package, version, content in PackageVersion.objects.order_by(
                         "package__name", "release_version").values_list(
                         "package__name", "version", "content_digest").iterator(2000)],
    }


def blobs_known_from(document: dict, what: str) -> set[str]:
    """The digests a destination holds, from its inventory or from the manifest of a transfer it imported."""
    try:
        if document.get("format") == INVENTORY_FORMAT:
            return {blob["digest"] for blob in document["blobs"]}
        if document.get("format") == FORMAT:
            # Once imported, the destination holds every blob of every version the transfer listed.
            return {blob["digest"] for version in document["versions"] for blob in version["blobs"]}
    except (KeyError, TypeError):
        pass
    raise RegistryError(ErrorCode.INVALID_INVENTORY, f"{what} is neither a registry inventory (manage.py inventory) "
                        "nor a transfer set's manifest (transfer.json).", file=what)


def read_known_blobs(path: str) -> set[str]:
    """The digests named by an inventory file or a transfer manifest at ``path``."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
        document = json.loads(data)
    except OSError as error:
        raise RegistryError(ErrorCode.INVALID_INVENTORY, f"Cannot read {path}: {error.strerror}.", file=path) from None
    except ValueError as error:
        raise RegistryError(ErrorCode.INVALID_INVENTORY, f"{path} is not JSON: {error}.", file=path) from None
    if not isinstance(document, dict):
        raise RegistryError(ErrorCode.INVALID_INVENTORY, f"{path} is not a JSON object.", file=path)
    return blobs_known_from(document, path)


def write_inventory(path: str) -> dict:
    """``manage.py inventory``: what this registry holds, as a file an export on the other side reads."""
    document = inventory()
    with open(path, "w") as file:
        json.dump(document, file, indent=1)
    return {"path": path, "blobs": len(document["blobs"]), "versions": len(document["versions"])}
