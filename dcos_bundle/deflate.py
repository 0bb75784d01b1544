"""gzip for image layers: the one place the deflate library is chosen, the inflater that checks a layer's
diff_id at ingest, and the parallel compressor of the builder.

zlib-ng (PyPI ``zlib-ng``, a drop-in for ``zlib``) inflates 1.4 to 2 times and deflates (level 6) about twice
as fast as the standard library; the standard ``zlib`` is used wherever it is not importable. Both read
every valid gzip stream the same way; what they write is valid gzip either way, but not the same bytes,
so a build is byte-for-byte reproducible with the same library (the one requirements.txt pins).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import BinaryIO, Callable, Iterator

try:
    from zlib_ng import zlib_ng as zlib
except ImportError:  # not installed: the standard library, slower but the same format
    import zlib

LIBRARY: ModuleType = zlib
LIBRARY_NAME = "zlib-ng" if zlib.__name__ != "zlib" else "zlib"
GzipError = zlib.error  # what the inflater raises for bytes that are not gzip
crc32 = zlib.crc32  # a ZIP member's checksum, from the faster library as well

GZIP_WBITS = 31  # a gzip container, as registries and docker expect for tar+gzip layers
RAW_WBITS = -15  # bare deflate blocks, which the parallel compressor puts in one gzip container itself
INFLATED_PIECE = 1024 * 1024
# pigz's trade: blocks compressed each on its own, primed with the 32 KiB window before them, lose little.
BLOCK_SIZE = 1024 * 1024
WINDOW = 32 * 1024
# magic, deflate, no flags, mtime 0 (reproducible), no extra flags, OS unix: what zlib writes for wbits=31.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
# An empty final block (fixed Huffman, BFINAL set): ends a deflate stream whose blocks were all sync-flushed.
FINAL_EMPTY_BLOCK = b"\x03\x00"


class GzipInflater:
    """Inflates a gzip stream handed in pieces, concatenated members included (as gunzip reads them).

    Output comes in bounded pieces: a stream that inflates to terabytes costs time, not memory.
    ``zlib.error`` says the stream is not gzip; ``complete`` says whether it ended at a member's end.
    """

    def __init__(self, library: ModuleType = LIBRARY):
        self._library = library
        self._inflater = library.decompressobj(GZIP_WBITS)
        self.members = 0
        self._in_member = False

    def inflate(self, data) -> Iterator[bytes]:
        while True:
            if data:
                self._in_member = True
            piece = self._inflater.decompress(data, INFLATED_PIECE)
            if piece:
                yield piece
            if self._inflater.eof:
                self._in_member = False
                self.members += 1
                data = self._inflater.unused_data
                self._inflater = self._library.decompressobj(GZIP_WBITS)
                if not data:
                    return
            else:
                data = self._inflater.unconsumed_tail
                # A full piece may leave output inside the inflater although it took every input byte.
                if not data and len(piece) < INFLATED_PIECE:
                    return

    @property
    def complete(self) -> bool:
        return self.members > 0 and not self._in_member


class _Blocks:
    """A stream cut in blocks of exactly BLOCK_SIZE (the last one shorter): the block boundaries, and so the
    output, never depend on how the source happens to return its reads."""

    def __init__(self, stream: BinaryIO, first: bytes):
        self._stream = stream
        self._pending = first

    def next(self) -> bytes:
        parts, missing = [], BLOCK_SIZE
        if self._pending:
            parts.append(self._pending[:missing])
            self._pending = self._pending[missing:]
            missing -= len(parts[0])
        while missing:
            more = self._stream.read(missing)
            if not more:
                break
            parts.append(more)
            missing -= len(more)
        return parts[0] if len(parts) == 1 else b"".join(parts)  # no copy for a block read whole


def _deflate_block(library: ModuleType, level: int, block: bytes, window: bytes) -> bytes:
    compressor = library.compressobj(level, library.DEFLATED, RAW_WBITS, zdict=window) if window else \
        library.compressobj(level, library.DEFLATED, RAW_WBITS)
    # A sync flush ends the block on a byte boundary, so the next one's output simply follows it.
    return compressor.compress(block) + compressor.flush(library.Z_SYNC_FLUSH)


def gzip_parallel(
    stream: BinaryIO,
    write: Callable[[bytes], object],
    on_uncompressed: Callable[[bytes], None],
    level: int,
    first: bytes = b"",
    threads: int | None = None,
    library: ModuleType = LIBRARY,
) -> None:
    """Compress ``first`` and then the rest of ``stream`` to one gzip member, as pigz does: blocks of BLOCK_SIZE
    deflated at once by a pool of threads (the library releases the GIL), written in order.

    Memory stays at two blocks in flight per thread, whatever the stream's size; ``on_uncompressed`` sees every
    input byte once, in order (the diff_id's hash). The same input, level and library give the same bytes.
    """
    threads = threads or os.cpu_count() or 1
    crc = 0
    size = 0
    in_flight: deque[Future] = deque()
    write(GZIP_HEADER)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gzip") as pool:
        blocks = _Blocks(stream, first)
        block = blocks.next()
        window = b""
        while block:
            in_flight.append(pool.submit(_deflate_block, library, level, block, window))
            on_uncompressed(block)
            crc = library.crc32(block, crc)
            size += len(block)
            window = block[-WINDOW:]
            while len(in_flight) > 2 * threads:
                write(in_flight.popleft().result())
            block = blocks.next()
        while in_flight:
            write(in_flight.popleft().result())
    write(FINAL_EMPTY_BLOCK + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
