"""Deterministic pseudo-random byte streams of any size, never held in memory whole."""

from __future__ import annotations

import hashlib
import io
import random


class PatternStream(io.RawIOBase):
    """``size`` reproducible bytes for a ``seed``, generated as they are read."""

    BLOCK = 1024 * 1024

    def __init__(self, size: int, seed: int = 0, fail_after: int | None = None):
        self._rng = random.Random(seed)
        self._remaining = size
        self._pending = memoryview(b"")
        self._served = 0
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._fail_after is not None and self._served >= self._fail_after:
            raise OSError("simulated read failure")
        if not self._pending and self._remaining > 0:
            block = min(self.BLOCK, self._remaining)
            self._pending = memoryview(self._rng.randbytes(block))
            self._remaining -= block
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self._served += count
        return count


def pattern_digest(size: int, seed: int = 0) -> str:
    hasher = hashlib.sha256()
    stream = PatternStream(size, seed)
    while chunk := stream.read(PatternStream.BLOCK):
        hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
