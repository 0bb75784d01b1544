"""Digests as the registry writes them (``sha256:<64 lower-case hex>``), and hashing while bytes are copied.

The one home of sha256 in the project: every stream that is stored, staged, served or checked is
hashed here, once, as it passes. Nothing reads a file a second time to hash it: a copy hashes what
it copies (``HashingCopier.chunks``, ``HashingWriter``), a check reads to hash and nothing else
(``hash_stream``, ``hash_file``).
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import BinaryIO, Iterator, NamedTuple

from dcos_bundle.errors import ErrorCode, RegistryError

DIGEST_ALGORITHM = "sha256"
CHUNK_SIZE = 1024 * 1024
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
# Any digest the OCI image spec allows (algorithm ":" encoded), whatever its algorithm.
_ANY_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


class InvalidDigest(ValueError):
    code = "invalid_digest"


def parse_digest(digest: str) -> str:
    """Return the hex part of a ``sha256:<hex>`` digest, refusing anything else."""
    match = _DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
    if not match:
        raise InvalidDigest(f"{digest!r} is not a digest of the form sha256:<64 lower-case hex digits>.")
    return match.group(1)


def checked_digest(value, code: ErrorCode, what: str, **details) -> str:
    """``value`` if it is a sha256 digest; ``unsupported_digest`` for a digest of another algorithm; else ``code``.

    For digests a bundle declares: ``what`` names the place ("The config descriptor's digest").
    """
    if isinstance(value, str) and _DIGEST_RE.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 100 else repr(value)[:90] + "…"
    algorithm = value.partition(":")[0] if isinstance(value, str) else ""
    if algorithm != DIGEST_ALGORITHM and isinstance(value, str) and _ANY_DIGEST.fullmatch(value):
        raise RegistryError(
            ErrorCode.UNSUPPORTED_DIGEST, f"{what} {shown} uses {algorithm}; this registry addresses content by "
            f"{DIGEST_ALGORITHM} only.", **details, algorithm=algorithm,
        )
    raise RegistryError(code, f"{what} {shown} is not a digest of the form sha256:<64 lower-case hex digits>.", **details)


def digest_of(hex_digest: str) -> str:
    return f"{DIGEST_ALGORITHM}:{hex_digest}"


def sha256_hex(data: bytes) -> str:
    """The bare hex sha256 of a small value held in memory (a secret, a key, a rendered document)."""
    return hashlib.sha256(data).hexdigest()


def digest_bytes(data: bytes) -> str:
    """``sha256:<hex>`` of a small document held in memory (JSON blobs, canonical content)."""
    return digest_of(sha256_hex(data))


class Hashed(NamedTuple):
    digest: str
    size: int


class HashingCopier:
    """Hashes and counts bytes as they pass from a source stream to a sink.

    Every byte is read once: hashed while it is written.
    """

    def __init__(self):
        self._hash = hashlib.sha256()
        self.size = 0

    def chunks(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The stream's bytes to its end, hashed and counted as they are handed on."""
        while True:
            chunk = stream.read(chunk_size)
            if not chunk:
                return
            self.update(chunk)
            yield chunk

    @property
    def digest(self) -> str:
        return digest_of(self._hash.hexdigest())

    @property
    def hashed(self) -> Hashed:
        return Hashed(self.digest, self.size)

    def update(self, chunk) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)


class HashingWriter(HashingCopier):
    """A writable file that hashes and counts what is written through it."""

    def __init__(self, file: BinaryIO):
        super().__init__()
        self._file = file

    def write(self, data) -> int:
        self.update(data)
        return self._file.write(data)


def hash_stream(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Hashed:
    """Digest and size of what is left in ``stream``, read to its end."""
    copier = HashingCopier()
    for _ in copier.chunks(stream, chunk_size):
        pass
    return copier.hashed


def hash_file(path: str | os.PathLike) -> Hashed:
    """Digest and size of a file, read once."""
    with open(path, "rb") as file:
        return hash_stream(file)
