"""Where uploads wait for their job: files under STAGING_DIR, written as they arrive, hashed on the way."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from dcos_bundle.digests import CHUNK_SIZE, digest_of
from dcos_bundle.errors import ErrorCode, RegistryError


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


def receive(stream: BinaryIO, path: Path, declared_size: int | None) -> tuple[int, str]:
    """Copy an upload to ``path``, hashing it; refuse it past MAX_BUNDLE_BYTES. Return size and digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hasher, size = hashlib.sha256(), 0
    try:
        with open(path, "wb") as file:
            while chunk := stream.read(CHUNK_SIZE):
                size += len(chunk)
                if size > settings.MAX_BUNDLE_BYTES:
                    raise too_large(size)
                hasher.update(chunk)
                file.write(chunk)
        if declared_size is not None and size != declared_size:
            raise RegistryError(
                ErrorCode.UPLOAD_INCOMPLETE,
                f"The upload ended after {size} of the {declared_size} bytes it announced.",
                received=size, declared=declared_size,
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size, digest_of(hasher.hexdigest())


def append(stream: BinaryIO, path: Path, offset: int, length: int) -> int:
    """Write exactly ``length`` bytes at ``offset`` of a resumable upload's file; return the new end.

    A chunk that breaks off is cut back, so the file always ends at a chunk boundary.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as file:
        try:
            file.seek(offset)
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
