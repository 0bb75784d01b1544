"""Where uploads wait for their job: files under STAGING_DIR, written as they arrive, hashed on the way."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from dcos_bundle.digests import CHUNK_SIZE, HashingCopier, Hashed
from dcos_bundle.errors import ErrorCode, RegistryError
from ingest.stages.inspect import END_RECORD_SIGNATURE, LOCAL_HEADER_SIGNATURE

# How many first bytes of an upload decide whether it can be a bundle at all.
ZIP_START = len(LOCAL_HEADER_SIGNATURE)
# What those bytes can refuse an upload with, before the rest of it is read.
REFUSED_AT_THE_START = frozenset({ErrorCode.NOT_A_ZIP, ErrorCode.EMPTY_BUNDLE})


def bundle_path(job_id: uuid.UUID) -> Path:
    return settings.STAGING_DIR / "bundles" / f"{job_id}.dcos"


def upload_path(session_id: uuid.UUID) -> Path:
    return settings.STAGING_DIR / "uploads" / f"{session_id}.part"


def too_large(size: int) -> RegistryError:
    return RegistryError(
        ErrorCode.BUNDLE_TOO_LARGE,
        f"The bundle is {size} bytes; this registry accepts bundles of at most {settings.MAX_BUNDLE_BYTES} bytes.",
        size=size, limit=settings.MAX_BUNDLE_BYTES,
    )


def check_zip_start(head: bytes) -> None:
    """Refuse an upload by its first bytes (the first few, while fewer have arrived).

    A bundle is a ZIP with members, and such a ZIP starts with a local file header; one that starts
    with its end record holds nothing.
    """
    head = head[:ZIP_START]
    if LOCAL_HEADER_SIGNATURE.startswith(head) or (len(head) < ZIP_START and END_RECORD_SIGNATURE.startswith(head)):
        return
    if head == END_RECORD_SIGNATURE:
        raise RegistryError(ErrorCode.EMPTY_BUNDLE, "The upload is an empty ZIP archive; a bundle holds at least its "
                            "metadata.json and manifest.json.")
    raise RegistryError(
        ErrorCode.NOT_A_ZIP,
        f"The upload is not a ZIP archive: it starts with the bytes {head.hex(' ')}, a ZIP with "
        f"{LOCAL_HEADER_SIGNATURE.hex(' ')} ('PK'). A bundle is the .dcos file dcos-registry build writes.",
        first_bytes=head.hex(),
    )


def read_zip_start(stream: BinaryIO, seen: bytes = b"", limit: int = ZIP_START) -> bytes:
    """Read the upload's first bytes on their own (at most ``limit``; ``seen`` arrived before) and refuse the
    upload if they cannot start a bundle, before anything more of it is read. Return the bytes read."""
    head = stream.read(min(ZIP_START - len(seen), limit))
    check_zip_start(seen + head)
    return head


def receive(stream: BinaryIO, path: Path, declared_size: int | None) -> Hashed:
    """Copy an upload to ``path``, hashing it; refuse it past MAX_BUNDLE_BYTES. Return its digest and size."""
    head = read_zip_start(stream)
    path.parent.mkdir(parents=True, exist_ok=True)
    copier = HashingCopier()
    try:
        with open(path, "wb") as file:
            copier.update(head)
            file.write(head)
            for chunk in copier.chunks(stream):
                if copier.size > settings.MAX_BUNDLE_BYTES:
                    raise too_large(copier.size)
                file.write(chunk)
        if declared_size is not None and copier.size != declared_size:
            raise RegistryError(
                ErrorCode.UPLOAD_INCOMPLETE,
                f"The upload ended after {copier.size} of the {declared_size} bytes it announced.",
                received=copier.size, declared=declared_size,
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return copier.hashed


def append(stream: BinaryIO, path: Path, offset: int, length: int) -> int:
    """Write exactly ``length`` bytes at ``offset`` of a resumable upload's file; return the new end.

    A chunk that breaks off is cut back, so the file always ends at a chunk boundary.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as file:
        try:
            head = read_zip_start(stream, seen=file.read(offset), limit=length) if offset < ZIP_START else b""
            file.seek(offset)
            file.write(head)
            written = len(head)
            while written < length:
                chunk = stream.read(min(CHUNK_SIZE, length - written))
                if not chunk:
                    raise RegistryError(
                        ErrorCode.UPLOAD_INCOMPLETE,
                        f"The chunk ended after {written} of the {length} bytes its Content-Range announced.",
                        received=written, declared=length,
                    )
                file.write(chunk)
                written += len(chunk)
            file.flush()
            os.fsync(file.fileno())
        except BaseException:
            file.truncate(offset)
            raise
    return offset + written


def remove(path: str | Path | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)
