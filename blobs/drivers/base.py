"""The content-addressed blob store interface that every storage driver implements.

Blobs are keyed by ``sha256:<64 lower-case hex>``. A blob becomes visible only after the
bytes written were hashed and matched the expected digest, so a reader never sees a
partial or corrupt blob. This module is plain Python (no Django).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from dcos_bundle.digests import HashingCopier


class BlobStoreError(Exception):
    """Base of every error a blob store raises; ``code`` is machine-readable."""

    code = "blob_store_error"


class BlobNotFound(BlobStoreError, LookupError):
    code = "blob_unknown"

    def __init__(self, digest: str):
        super().__init__(f"Blob {digest} is not in the store.")
        self.digest = digest


class DigestMismatch(BlobStoreError):
    code = "digest_mismatch"

    def __init__(self, expected: str, actual: str, size: int):
        super().__init__(f"Content hashes to {actual} ({size} bytes), expected {expected}; nothing was stored.")
        self.expected = expected
        self.actual = actual
        self.size = size


class SizeMismatch(BlobStoreError):
    code = "size_mismatch"

    def __init__(self, digest: str | None, expected: int, actual: int):
        super().__init__(f"Content of {digest or 'the blob'} is {actual} bytes, expected {expected}; nothing was stored.")
        self.expected = expected
        self.actual = actual


class BlobStoreUnavailable(BlobStoreError):
    """The store did not answer (no connection, a timeout, a server error): the same call may work later.

    The message names no host or bucket; the driver's own exception (the ``__cause__``) does, for the log.
    """

    code = "blob_store_unavailable"

    def __init__(self, operation: str):
        super().__init__(f"The blob store did not answer ({operation}).")
        self.operation = operation


class InvalidRange(BlobStoreError):
    code = "range_not_satisfiable"

    def __init__(self, digest: str, offset: int, length: int | None, size: int):
        super().__init__(
            f"Range offset={offset} length={length} is outside blob {digest} of {size} bytes."
        )
        self.size = size


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


@dataclass(frozen=True)
class StorageUsage:
    used_bytes: int
    blob_count: int
    # None where the backend has no notion of free space (object stores).
    free_bytes: int | None


def check_range(digest: str, size: int, offset: int, length: int | None) -> int:
    """Validate a byte range against a blob size; return the number of bytes it covers."""
    if offset < 0 or (length is not None and length < 0) or offset > size:
        raise InvalidRange(digest, offset, length, size)
    available = size - offset
    if length is None:
        return available
    if length > available:
        raise InvalidRange(digest, offset, length, size)
    return length


class VerifyingCopier(HashingCopier):
    """A copier that checks, at the end, that the bytes were the ones expected."""

    def verify(self, expected_digest: str | None, expected_size: int | None) -> BlobInfo:
        """Raise if the copied bytes are not what was expected; otherwise describe them."""
        if expected_size is not None and self.size != expected_size:
            raise SizeMismatch(expected_digest, expected_size, self.size)
        if expected_digest is not None and self.digest != expected_digest:
            raise DigestMismatch(expected_digest, self.digest, self.size)
        return BlobInfo(self.digest, self.size)


class BlobStore(ABC):
    """One interface for content-addressed blobs, whatever holds them."""

    #: short name of the driver, e.g. ``local`` or ``s3``
    kind: str

    @property
    @abstractmethod
    def identity(self) -> str:
        """Where the blobs live (kind + location, never credentials); recorded by the backend lock."""

    @abstractmethod
    def put(
        self,
        stream: BinaryIO,
        expected_digest: str | None = None,
        expected_size: int | None = None,
    ) -> BlobInfo:
        """Store the stream's bytes, hashing as they are copied.

        The blob becomes visible only when its digest (and size, if given) match; on a
        mismatch nothing is left behind and DigestMismatch/SizeMismatch is raised. When
        ``expected_digest`` names a blob that is already stored the stream is not read.
        Concurrent writers of one digest are harmless.
        """

    @abstractmethod
    def stat(self, digest: str) -> BlobInfo:
        """Describe a stored blob; BlobNotFound if absent."""

    def exists(self, digest: str) -> bool:
        try:
            self.stat(digest)
        except BlobNotFound:
            return False
        return True

    @abstractmethod
    def open(self, digest: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        """A readable stream of the blob (or of ``length`` bytes from ``offset``); close it after use."""

    def download_url(self, digest: str, expires_in: int, content_type: str | None = None,
                     content_disposition: str | None = None) -> str | None:
        """A URL clients may fetch the blob from directly for ``expires_in`` seconds, answered with that content
        type and disposition; None where the backend has none (local disk)."""
        return None

    @abstractmethod
    def delete(self, digest: str) -> bool:
        """Remove a blob; True if it existed."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob, in no particular order."""

    @abstractmethod
    def free_bytes(self) -> int | None:
        """Free space left for blobs; None where the backend has no such limit (object stores). Cheap."""

    def usage(self) -> StorageUsage:
        """Bytes and blobs stored (a full listing: not cheap), and free bytes where known."""
        used = count = 0
        for blob in self.iter_blobs():
            used += blob.size
            count += 1
        return StorageUsage(used_bytes=used, blob_count=count, free_bytes=self.free_bytes())

    @abstractmethod
    def sweep_incomplete(self, older_than: float) -> int:
        """Remove what writes that never finished left behind (a killed writer), started before
        ``older_than`` (a Unix time); return how many were removed. Blobs are never touched."""

    @abstractmethod
    def probe(self) -> None:
        """Write, read back and remove a scratch object outside the blob namespace; raise on failure."""
