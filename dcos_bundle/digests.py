"""Digests as the registry writes them (``sha256:<64 lower-case hex>``), and hashing while bytes are copied.

The one home of sha256 in the project: every stream that is stored, staged or served is hashed
here, once, as it passes.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Iterator

DIGEST_ALGORITHM = "sha256"
CHUNK_SIZE = 1024 * 1024
_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")


class InvalidDigest(ValueError):
    code = "invalid_digest"


def parse_digest(digest: str) -> str:
    """Return the hex part of a ``sha256:<hex>`` digest, refusing anything else."""
    match = _DIGEST_RE.match(digest) if isinstance(digest, str) else None
    if not match:
        raise InvalidDigest(f"{digest!r} is not a digest of the form sha256:<64 lower-case hex digits>.")
    return match.group(1)


def digest_of(hex_digest: str) -> str:
    return f"{DIGEST_ALGORITHM}:{hex_digest}"


class HashingCopier:
    """Hashes and counts bytes as they pass from a source stream to a sink.

    Every byte is read once: hashed while it is written.
    """

    def __init__(self):
        self._hash = hashlib.sha256()
        self.size = 0

    def chunks(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while True:
            chunk = stream.read(chunk_size)
            if not chunk:
                return
            self.update(chunk)
            yield chunk

    @property
    def digest(self) -> str:
        return digest_of(self._hash.hexdigest())

    def update(self, chunk) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)
