"""Digests as the registry writes them (``sha256:<64 lower-case hex>``), and hashing while bytes are copied.

The one home of sha256 in the project: every stream that is stored, staged, served or checked is
hashed here, once, as it passes. Nothing reads a file a second time to hash it: a copy hashes what
it copies (``HashingCopier.chunks``, ``HashingWriter``), a check reads to hash and nothing else
(``hash_stream``, ``hash_file``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import re
import sys
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


def _openssl_sha256():
    """OpenSSL's sha256 with its state in plain memory (the library hashlib uses), or None where it is not found."""
    name = ctypes.util.find_library("crypto")
    try:
        library = ctypes.CDLL(name) if name else None
        functions = (library.SHA256_Init, library.SHA256_Update, library.SHA256_Final) if library else None
    except (OSError, AttributeError):
        return None
    if functions is not None:
        functions[1].argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)
    return functions


_OPENSSL_SHA256 = _openssl_sha256()
# SHA256_CTX: h[8], Nl, Nh, data[16] (32-bit words), num, md_len.
_SHA256_STATE_BYTES = 4 * (8 + 2 + 16) + 2 * 4
# A saved state is read back only by a process that lays it out the same way.
_STATE_FORMAT = f"openssl-sha256-{sys.byteorder}-{_SHA256_STATE_BYTES}"


class ResumableSha256:
    """sha256 whose running state can be saved between requests and taken up by another process.

    A resumable upload's chunks arrive over many requests, at whichever web: each one hashes its
    chunk and saves the state, so the bundle's digest is known when the last chunk arrives, without
    reading the staged file again. Where OpenSSL's sha256 cannot be loaded, ``available`` is False.
    """

    available = _OPENSSL_SHA256 is not None

    def __init__(self, state: dict | None = None):
        self._context = ctypes.create_string_buffer(_SHA256_STATE_BYTES)
        if state:
            if state.get("format") != _STATE_FORMAT:
                raise ValueError(f"A sha256 state saved as {state.get('format')!r} cannot be resumed here.")
            self._context.raw = bytes.fromhex(state["context"])
            self.size = state["size"]
        else:
            _OPENSSL_SHA256[0](self._context)
            self.size = 0

    def update(self, chunk) -> None:
        data = bytes(chunk) if not isinstance(chunk, bytes) else chunk
        _OPENSSL_SHA256[1](self._context, data, len(data))
        self.size += len(data)

    def state(self) -> dict:
        return {"format": _STATE_FORMAT, "context": self._context.raw.hex(), "size": self.size}

    @property
    def digest(self) -> str:
        """The digest of everything so far (the running state is left as it is)."""
        finished = ctypes.create_string_buffer(self._context.raw, _SHA256_STATE_BYTES)
        out = ctypes.create_string_buffer(32)
        _OPENSSL_SHA256[2](out, finished)
        return digest_of(out.raw.hex())


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
