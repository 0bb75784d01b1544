"""The sha256 helpers every layer hashes with: checked against hashlib directly, and read once."""

from __future__ import annotations

import io
import json
import os

import pytest

from dcos_bundle.digests import (
    CHUNK_SIZE,
    HashingCopier,
    HashingWriter,
    InvalidDigest,
    ResumableSha256,
    digest_bytes,
    hash_file,
    hash_stream,
    parse_digest,
    sha256_hex,
)
from tests.streams import PatternStream, pattern_digest, sha256_digest

SIZE = 3 * CHUNK_SIZE + 123


class CountingReader(io.RawIOBase):
    """Counts the bytes read through it, to show that a helper reads each byte once."""

    def __init__(self, stream):
        self._stream = stream
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._stream.readinto(buffer)
        self.bytes_read += count
        return count


def test_hash_stream_reads_each_byte_once():
    stream = CountingReader(PatternStream(SIZE, seed=1))
    assert hash_stream(stream) == (pattern_digest(SIZE, seed=1), SIZE)
    assert stream.bytes_read == SIZE


def test_hash_file(tmp_path):
    data = PatternStream(SIZE, seed=2).read()
    path = tmp_path / "file"
    path.write_bytes(data)
    digest, size = hash_file(path)
    assert (digest, size) == (sha256_digest(data), len(data))


def test_an_empty_stream_has_the_digest_of_nothing():
    assert hash_stream(io.BytesIO(b"")) == (sha256_digest(b""), 0)


def test_the_copier_hashes_what_it_hands_on():
    copier = HashingCopier()
    source = CountingReader(PatternStream(SIZE, seed=3))
    sink = io.BytesIO()
    for chunk in copier.chunks(source):
        sink.write(chunk)
    assert copier.hashed == (sha256_digest(sink.getvalue()), SIZE)
    assert source.bytes_read == SIZE


def test_the_writer_hashes_what_it_writes():
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    for piece in (b"first ", b"", b"second"):
        writer.write(piece)
    assert sink.getvalue() == b"first second"
    assert (writer.digest, writer.size) == (sha256_digest(b"first second"), 12)


def test_small_values():
    assert digest_bytes(b"{}") == sha256_digest(b"{}")
    assert sha256_hex(b"{}") == sha256_digest(b"{}").removeprefix("sha256:")
    assert parse_digest(digest_bytes(b"x")) == sha256_hex(b"x")


@pytest.mark.parametrize("digest", ["sha256:" + "A" * 64, "sha512:" + "a" * 64, "a" * 64, None])
def test_parse_digest_refuses_other_forms(digest):
    with pytest.raises(InvalidDigest):
        parse_digest(digest)


def test_a_resumable_sha256_goes_on_in_another_hasher_from_its_saved_state():
    data = os.urandom(3 * 1024 * 1024 + 17)
    first = ResumableSha256()
    first.update(data[:1_000_001])
    # As a web keeps it between two chunks: through JSON, in a database row.
    resumed = ResumableSha256(json.loads(json.dumps(first.state())))
    resumed.update(memoryview(data)[1_000_001:])
    assert resumed.digest == digest_bytes(data) and resumed.size == len(data)
    assert first.digest == digest_bytes(data[:1_000_001])  # reading the digest leaves the state as it was
    assert ResumableSha256().digest == digest_bytes(b"")


def test_a_sha256_state_saved_in_another_layout_is_refused():
    state = {**ResumableSha256().state(), "format": "openssl-sha256-big-112"}
    with pytest.raises(ValueError):
        ResumableSha256(state)
