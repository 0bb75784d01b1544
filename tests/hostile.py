"""Hostile and broken bundles: each breaks exactly one rule.

ZIP-level: small archives written by zipfile, then patched byte by byte (``patched``,
``renamed``...). Content-level, from valid bundles: ``rewrite`` swaps or drops members;
``rechain_image`` changes an image's config or layers and recomputes every digest above them
(manifest, index, manifest.json), so only the intended lie remains.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Callable

from dcos_bundle.format import MANIFEST_MEMBER, METADATA_MEMBER, OCI_INDEX_MEMBER, image_blob_member
from dcos_bundle.oci import canonical_json

END_RECORD = struct.Struct("<4s4H2LH")
# Field offsets inside a local header, a central directory entry and the end record.
LOCAL_FLAGS, LOCAL_METHOD, LOCAL_CRC, LOCAL_COMPRESSED_SIZE, LOCAL_SIZE, LOCAL_NAME = 6, 8, 14, 18, 22, 30
CENTRAL_VERSION_NEEDED, CENTRAL_FLAGS, CENTRAL_METHOD = 6, 8, 10
CENTRAL_COMPRESSED_SIZE, CENTRAL_SIZE, CENTRAL_OFFSET, CENTRAL_NAME = 20, 24, 42, 46
END_DISK, END_COUNTS, END_DIRECTORY_SIZE = 4, 8, 12
ZIP64_LOCATOR_OFFSET = -12  # its offset field, in the locator just before the end record


def zip_bytes(*members: tuple[str | zipfile.ZipInfo, bytes], comment: bytes = b"") -> bytes:
    """A ZIP written by zipfile, members deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
        archive.comment = comment
    return buffer.getvalue()


def tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        archive.addfile(info, io.BytesIO(b"hello\n"))
    return buffer.getvalue()


def header_offsets(data: bytes) -> list[tuple[int, int]]:
    """(local header, central entry) offsets of each member, in central directory order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        position, offsets = archive.start_dir, []
        for info in archive.infolist():
            offsets.append((info.header_offset, position))
            name_length, extra_length, comment_length = struct.unpack_from("<3H", data, position + 28)
            position += CENTRAL_NAME + name_length + extra_length + comment_length
    return offsets


def patched(data: bytes, *changes: tuple) -> bytes:
    """``data`` with each (offset, struct format, *values) packed in."""
    patched_data = bytearray(data)
    for offset, fmt, *values in changes:
        struct.pack_into(fmt, patched_data, offset, *values)
    return bytes(patched_data)


def patched_in_both(data: bytes, member: int, local_field: int, central_field: int, fmt: str, *values) -> bytes:
    local, central = header_offsets(data)[member]
    return patched(data, (local + local_field, fmt, *values), (central + central_field, fmt, *values))


def in_central_entry(data: bytes, member: int, field: int, fmt: str, *values) -> bytes:
    return patched(data, (header_offsets(data)[member][1] + field, fmt, *values))


def in_end_record(data: bytes, field: int, fmt: str, *values) -> bytes:
    return patched(data, (len(data) - END_RECORD.size + field, fmt, *values))


def directory_offset(data: bytes) -> int:
    return header_offsets(data)[0][1]


def renamed(data: bytes, old: bytes, new: bytes) -> bytes:
    """Rename a member in both its headers (names of equal length)."""
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


def without_central_entry(data: bytes, member: int) -> bytes:
    """The ZIP with one member left out of the central directory: its bytes stay where they were."""
    offsets = header_offsets(data)
    start = offsets[member][1]
    end = offsets[member + 1][1] if member + 1 < len(offsets) else len(data) - END_RECORD.size
    signature, disk, directory_disk, disk_entries, count, size, offset, comment = END_RECORD.unpack(
        data[-END_RECORD.size:]
    )
    end_record = END_RECORD.pack(
        signature, disk, directory_disk, disk_entries - 1, count - 1, size - (end - start), offset, comment
    )
    return data[:start] + data[end:-END_RECORD.size] + end_record


def with_zip64_end_records(data: bytes) -> bytes:
    """The ZIP ended as an archive of over 65535 members or 4 GiB would be: zip64 end record, locator, end record."""
    end_at = len(data) - END_RECORD.size
    *_, count, size, offset, _ = END_RECORD.unpack(data[end_at:])
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end_at, 1)
    end_record = END_RECORD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end_at] + zip64_end + locator + end_record


class Pipe(io.RawIOBase):
    """A write-only stream that cannot seek: zipfile then writes data descriptors."""

    def __init__(self):
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        self.data += chunk
        return len(chunk)


def unix_member(name: str, mode: int, data: bytes = b"x") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system, info.external_attr = 3, mode << 16
    return info, data


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rewrite(source: Path, target: Path, members: dict[str, bytes | None],
            extra: list[tuple[str | zipfile.ZipInfo, bytes]] = ()) -> Path:
    """Copy a bundle, replacing members given bytes, dropping members given None, adding new ones
    (and ``extra`` members written as given, duplicates included)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", allowZip64=True) as new:
        for info in old.infolist():
            if info.filename in members:
                data = members[info.filename]
                if data is not None:
                    new.writestr(info, data, compress_type=info.compress_type)
            else:
                new.writestr(info, old.read(info), compress_type=info.compress_type)
        for name, data in members.items():
            if data is not None and name not in old.namelist():
                new.writestr(name, data)
        for name, data in extra:
            new.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return target


def read_json(bundle: Path, member: str):
    with zipfile.ZipFile(bundle) as archive:
        return json.loads(archive.read(member))


def rechain_image(
    source: Path,
    target: Path,
    config: Callable[[dict], None] = lambda config: None,
    layers: Callable[[list[bytes]], list[bytes]] = lambda layers: layers,
    manifest_change: Callable[[dict], None] = lambda manifest: None,
    config_bytes: Callable[[bytes], bytes] = lambda data: data,
) -> Path:
    """Change the first image's config (in place, or its bytes), its layer blobs and/or the descriptors of its
    manifest (after they were addressed), and re-address everything above."""
    with zipfile.ZipFile(source) as archive:
        index = json.loads(archive.read(OCI_INDEX_MEMBER))
        entry = index["manifests"][0]
        manifest = json.loads(archive.read(image_blob_member(entry["digest"])))
        config_document = json.loads(archive.read(image_blob_member(manifest["config"]["digest"])))
        layer_blobs = [archive.read(image_blob_member(layer["digest"])) for layer in manifest["layers"]]
        bundle_manifest = json.loads(archive.read(MANIFEST_MEMBER))

    changes: dict[str, bytes | None] = {
        image_blob_member(entry["digest"]): None,
        image_blob_member(manifest["config"]["digest"]): None,
        **{image_blob_member(layer["digest"]): None for layer in manifest["layers"]},
    }
    config(config_document)
    new_layers = layers(layer_blobs)
    config_blob = config_bytes(canonical_json(config_document))
    manifest["config"].update(digest=_digest(config_blob), size=len(config_blob))
    for descriptor, blob in zip(manifest["layers"], new_layers):
        descriptor.update(digest=_digest(blob), size=len(blob))
        changes[image_blob_member(descriptor["digest"])] = blob
    changes[image_blob_member(manifest["config"]["digest"])] = config_blob
    manifest_change(manifest)
    manifest_bytes = canonical_json(manifest)
    old_digest = entry["digest"]
    entry.update(digest=_digest(manifest_bytes), size=len(manifest_bytes))
    changes[image_blob_member(entry["digest"])] = manifest_bytes
    changes[OCI_INDEX_MEMBER] = json.dumps(index).encode()
    for image in bundle_manifest["images"]:
        if image["manifestDigest"] == old_digest:
            image["manifestDigest"] = entry["digest"]
    changes[MANIFEST_MEMBER] = json.dumps(bundle_manifest).encode()
    return rewrite(source, target, changes)


# A string value that ``with_raw_json`` replaces by JSON text no encoder writes.
RAW = "\u2063raw\u2063"


def with_raw_json(document, raw: str) -> bytes:
    """``document`` as JSON text, the string ``RAW`` in it replaced by ``raw`` verbatim."""
    text = json.dumps(document)
    assert text.count(json.dumps(RAW)) == 1
    return text.replace(json.dumps(RAW), raw).encode()


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_documents_changed(source: Path, target: Path, metadata: Callable[[dict], None],
                       manifest: Callable[[dict], None] = lambda manifest: None,
                       index: Callable[[dict], None] = lambda index: None) -> Path:
    """Change metadata.json, manifest.json and images/index.json together, so they still agree."""
    documents = {member: read_json(source, member) for member in (METADATA_MEMBER, MANIFEST_MEMBER, OCI_INDEX_MEMBER)}
    metadata(documents[METADATA_MEMBER])
    manifest(documents[MANIFEST_MEMBER])
    index(documents[OCI_INDEX_MEMBER])
    return rewrite(source, target, {member: json.dumps(document).encode() for member, document in documents.items()})


def random_whitespace(size: int) -> bytes:
    """``size`` bytes of JSON whitespace that deflate about 4:1, so they pass as no ZIP bomb."""
    return os.urandom(size).translate(bytes(b" \t\n\r"[byte % 4] for byte in range(256)))
