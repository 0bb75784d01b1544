"""Small stream adapters shared by the bundle tools (plain Python)."""

from __future__ import annotations

import io
from typing import Iterable, Iterator


class IterableReader(io.RawIOBase):
    """An iterable of byte chunks read as a file; no chunk is copied more than once."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not len(self._pending):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def drain(self) -> None:
        """Consume what is left unread, without copying it."""
        self._pending = memoryview(b"")
        for _ in self._chunks:
            pass


class ObservedReader(io.RawIOBase):
    """Passes a stream through, showing every chunk read to ``observe`` (hashing, inflating, counting)."""

    def __init__(self, stream, observe):
        self._stream = stream
        self._observe = observe

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._stream.readinto(buffer)
        if count:
            self._observe(memoryview(buffer)[:count])
        return count

    def close(self) -> None:
        self._stream.close()
        super().close()


class RangeReader(io.RawIOBase):
    """``length`` bytes of a seekable file from ``offset`` on (a blob's range, a member's data inside an archive);
    closing it closes the file."""

    def __init__(self, file, offset: int, length: int):
        file.seek(offset)
        self._file = file
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        count = self._file.readinto(memoryview(buffer)[:self._left])
        self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()
