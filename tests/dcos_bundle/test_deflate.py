"""gzip for layers: zlib-ng and the standard zlib read every layer alike, the parallel compressor writes gzip that
every reader takes, and without zlib-ng everything works on the standard library."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import uuid
import zlib as standard_zlib

import pytest
from zlib_ng import zlib_ng

from dcos_bundle import deflate
from dcos_bundle.builder.images import export_image
from dcos_bundle.deflate import GzipInflater, gzip_parallel
from tests.images import load_image
from tests.processes import PROJECT_DIR

LIBRARIES = [pytest.param(zlib_ng, id="zlib-ng"), pytest.param(standard_zlib, id="zlib")]


def inflated(data: bytes, library, piece: int = 64 * 1024) -> tuple[str, int]:
    """sha256 and size of what ``data`` inflates to, fed in pieces of ``piece`` bytes."""
    inflater, digest, size = GzipInflater(library), hashlib.sha256(), 0
    for start in range(0, len(data), piece):
        for out in inflater.inflate(memoryview(data)[start:start + piece]):
            digest.update(out)
            size += len(out)
    assert inflater.complete
    return "sha256:" + digest.hexdigest(), size


def compressed(data: bytes, library, threads: int, level: int = 6) -> bytes:
    out, seen = io.BytesIO(), hashlib.sha256()
    gzip_parallel(io.BytesIO(data), out.write, seen.update, level, threads=threads, library=library)
    assert seen.digest() == hashlib.sha256(data).digest()
    return out.getvalue()


def tar_like(size: int, seed: int) -> bytes:
    """Half text that compresses, half noise that does not, as a real layer mixes them."""
    generator = random.Random(seed)
    words = [generator.randbytes(generator.randint(2, 9)).hex().encode() for _ in range(500)]
    text = b" ".join(generator.choice(words) for _ in range(size // 12))[: size // 2]
    return text + generator.randbytes(size - len(text))


def test_the_default_library_is_zlib_ng():
    assert (deflate.LIBRARY_NAME, deflate.LIBRARY) == ("zlib-ng", zlib_ng)


@pytest.mark.docker
def test_both_libraries_inflate_a_real_layer_to_the_same_bytes_and_the_engines_diff_id(tmp_path, docker_client):
    reference = f"local/deflate-{uuid.uuid4().hex[:8]}:1"
    load_image(docker_client, reference)
    config, layers = export_image(docker_client, reference, tmp_path)
    assert layers
    for layer, diff_id in zip(layers, config["rootfs"]["diff_ids"]):
        data = layer.path.read_bytes()
        # gzip's own tool reads what the builder wrote to the engine's diff_id, and so does each library.
        outside = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True).stdout
        assert "sha256:" + hashlib.sha256(outside).hexdigest() == diff_id == layer.diff_id
        assert inflated(data, zlib_ng) == inflated(data, standard_zlib) == (diff_id, len(outside))
        # A layer gzip itself compressed (one deflate stream, as most registries serve them) too.
        by_gzip = subprocess.run(["gzip", "-6", "-c", "-n"], input=outside, capture_output=True, check=True).stdout
        assert inflated(by_gzip, zlib_ng) == inflated(by_gzip, standard_zlib) == (diff_id, len(outside))


@pytest.mark.parametrize("library", LIBRARIES)
def test_concatenated_members_and_tiny_pieces_inflate_as_gunzip_reads_them(library):
    data = tar_like(300_000, 1)
    stream = gzip.compress(data[:100_000], mtime=0) + gzip.compress(data[100_000:], mtime=0)
    assert inflated(stream, library, piece=1) == inflated(stream, library) == (
        "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


@pytest.mark.parametrize("library", LIBRARIES)
def test_output_far_bigger_than_the_input_comes_out_whole_in_bounded_pieces(library):
    zeros = gzip.compress(bytes(40 * 1024 * 1024), mtime=0)
    inflater = GzipInflater(library)
    pieces = list(inflater.inflate(zeros))
    assert inflater.complete and max(map(len, pieces)) <= deflate.INFLATED_PIECE
    assert sum(map(len, pieces)) == 40 * 1024 * 1024


@pytest.mark.parametrize("library", LIBRARIES)
def test_truncated_and_corrupt_streams_are_told_apart_from_whole_ones(library):
    stream = gzip.compress(tar_like(200_000, 2), mtime=0)
    cut = GzipInflater(library)
    list(cut.inflate(stream[:-100]))
    assert not cut.complete
    with pytest.raises(library.error):
        list(GzipInflater(library).inflate(b"\x1f\x8b\x08\x00" + bytes(50)))


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_parallel_compressor_writes_gzip_every_reader_takes_and_the_same_bytes_whatever_the_threads(library):
    # Not a whole number of blocks, so the last block is short.
    data = tar_like(3 * deflate.BLOCK_SIZE + 12_345, 3)
    one, two, four = (compressed(data, library, threads) for threads in (1, 2, 4))
    assert one == two == four
    assert gzip.decompress(one) == data
    assert subprocess.run(["gzip", "-dc"], input=one, capture_output=True, check=True).stdout == data
    assert subprocess.run(["pigz", "-dc"], input=one, capture_output=True, check=True).stdout == data
    assert inflated(one, zlib_ng) == inflated(one, standard_zlib)
    # Compressed in blocks, it is hardly bigger than in one piece.
    assert len(one) < 1.02 * len(gzip.compress(data, compresslevel=6))


@pytest.mark.parametrize("size", [0, 1, deflate.BLOCK_SIZE])
def test_empty_and_block_sized_inputs_are_valid_gzip(size):
    data = tar_like(size, 4)
    assert gzip.decompress(compressed(data, deflate.LIBRARY, threads=2)) == data


def test_blocks_do_not_depend_on_how_the_source_returns_its_reads():
    data = tar_like(2 * deflate.BLOCK_SIZE + 7, 5)

    class Trickle(io.RawIOBase):
        def __init__(self):
            self._source = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self._source.readinto(memoryview(buffer)[:777])

    out = io.BytesIO()
    gzip_parallel(Trickle(), out.write, lambda block: None, 6, threads=2)
    assert out.getvalue() == compressed(data, deflate.LIBRARY, threads=2)
    # A first piece read ahead (to see whether a layer is gzip already) changes nothing either.
    ahead = io.BytesIO()
    gzip_parallel(io.BytesIO(data[1000:]), ahead.write, lambda block: None, 6, first=data[:1000], threads=2)
    assert ahead.getvalue() == out.getvalue()


FALLBACK = """
import gzip, hashlib, io, json, sys
sys.modules["zlib_ng"] = None  # as if zlib-ng were not installed
from dcos_bundle import deflate
from dcos_bundle.oci import spool_layer
data = bytes(range(256)) * 20000
layer = spool_layer(io.BytesIO(data), sys.argv[1])
stream = layer.path.read_bytes()
inflater = deflate.GzipInflater()
out = b"".join(inflater.inflate(stream))
print(json.dumps({"library": deflate.LIBRARY_NAME, "module": deflate.LIBRARY.__name__,
                  "diff_id_right": layer.diff_id == "sha256:" + hashlib.sha256(data).hexdigest(),
                  "gzip_reads_it": gzip.decompress(stream) == data, "inflated": out == data and inflater.complete}))
"""


def test_without_zlib_ng_the_standard_library_builds_and_checks_layers(tmp_path):
    result = subprocess.run([sys.executable, "-c", FALLBACK, str(tmp_path)], cwd=PROJECT_DIR, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"library": "zlib", "module": "zlib", "diff_id_right": True,
                                         "gzip_reads_it": True, "inflated": True}
