"""The blob store contract. Every driver runs every test here (see ``conftest.subject``)."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import tracemalloc

import pytest

from blobs.drivers import (
    BlobInfo,
    BlobNotFound,
    DigestMismatch,
    InvalidDigest,
    InvalidRange,
    SizeMismatch,
)
from tests.streams import PatternStream, pattern_digest, sha256_digest

MiB = 1024 * 1024
EMPTY_DIGEST = sha256_digest(b"")
ABSENT_DIGEST = sha256_digest(b"never stored")


def read_all(store, digest, **range_) -> bytes:
    with store.open(digest, **range_) as stream:
        return stream.read()


def test_round_trip_with_expected_digest(store):
    data = b"hello registry\n" * 1000
    info = store.put(io.BytesIO(data), expected_digest=sha256_digest(data), expected_size=len(data))
    assert info == BlobInfo(sha256_digest(data), len(data))
    assert store.exists(info.digest)
    assert store.stat(info.digest) == info
    assert read_all(store, info.digest) == data


def test_put_computes_the_digest_when_none_is_expected(store):
    data = b"anonymous content"
    info = store.put(io.BytesIO(data))
    assert info.digest == sha256_digest(data)
    assert read_all(store, info.digest) == data


def test_multipart_sized_blob_round_trips_with_and_without_expected_digest(subject):
    store = subject.store
    size, seed = 12 * MiB + 123, 7
    digest = pattern_digest(size, seed)
    assert store.put(PatternStream(size, seed), expected_digest=digest).digest == digest
    assert store.delete(digest)
    assert store.put(PatternStream(size, seed)).digest == digest
    assert sha256_digest(read_all(store, digest)) == digest
    assert subject.leftovers() == []


def test_empty_blob(store):
    info = store.put(io.BytesIO(b""), expected_digest=EMPTY_DIGEST, expected_size=0)
    assert info == BlobInfo(EMPTY_DIGEST, 0)
    assert store.stat(EMPTY_DIGEST).size == 0
    assert read_all(store, EMPTY_DIGEST) == b""
    assert read_all(store, EMPTY_DIGEST, offset=0, length=0) == b""


@pytest.mark.parametrize(
    "offset, length",
    [(0, None), (0, 1), (10, 5), (10, None), (4095, 1), (4096, 0), (4096, None), (1000, 3096)],
)
def test_byte_ranges(store, offset, length):
    data = bytes(range(256)) * 16  # 4096 bytes
    digest = store.put(io.BytesIO(data)).digest
    end = len(data) if length is None else offset + length
    assert read_all(store, digest, offset=offset, length=length) == data[offset:end]


@pytest.mark.parametrize("offset, length", [(4097, None), (4096, 1), (0, 4097), (-1, None), (0, -1)])
def test_ranges_outside_the_blob_are_refused(store, offset, length):
    digest = store.put(io.BytesIO(b"x" * 4096)).digest
    with pytest.raises(InvalidRange):
        store.open(digest, offset=offset, length=length)


def test_range_inside_a_multipart_sized_blob(store):
    size, seed = 11 * MiB, 3
    digest = store.put(PatternStream(size, seed)).digest
    whole = PatternStream(size, seed).readall()
    offset = 5 * MiB - 10
    assert read_all(store, digest, offset=offset, length=20) == whole[offset : offset + 20]


def test_digest_mismatch_stores_nothing(subject):
    store = subject.store
    with pytest.raises(DigestMismatch) as raised:
        store.put(io.BytesIO(b"actual bytes"), expected_digest=ABSENT_DIGEST)
    assert raised.value.actual == sha256_digest(b"actual bytes")
    assert not store.exists(ABSENT_DIGEST)
    assert not store.exists(sha256_digest(b"actual bytes"))
    assert list(store.iter_blobs()) == []
    assert subject.leftovers() == []


def test_digest_mismatch_of_a_multipart_sized_blob_stores_nothing(subject):
    store = subject.store
    with pytest.raises(DigestMismatch):
        store.put(PatternStream(11 * MiB, 1), expected_digest=pattern_digest(11 * MiB, 2))
    assert list(store.iter_blobs()) == []
    assert subject.leftovers() == []


def test_size_mismatch_stores_nothing(subject):
    store = subject.store
    data = b"twelve bytes"
    with pytest.raises(SizeMismatch):
        store.put(io.BytesIO(data), expected_digest=sha256_digest(data), expected_size=len(data) + 1)
    assert not store.exists(sha256_digest(data))
    assert subject.leftovers() == []


def test_failing_stream_stores_nothing(subject):
    store = subject.store
    with pytest.raises(OSError, match="simulated"):
        store.put(PatternStream(12 * MiB, 5, fail_after=7 * MiB))
    assert list(store.iter_blobs()) == []
    assert subject.leftovers() == []


def test_existing_blob_is_not_written_again(store):
    data = b"stored once"
    digest = store.put(io.BytesIO(data)).digest

    class Unreadable(io.RawIOBase):
        def readinto(self, buffer):
            raise AssertionError("the stream of an already stored blob must not be read")

    assert store.put(Unreadable(), expected_digest=digest) == BlobInfo(digest, len(data))


def test_concurrent_writers_of_one_digest(subject):
    store = subject.store
    size, seed = 6 * MiB, 11
    digest = pattern_digest(size, seed)
    errors, results = [], []
    barrier = threading.Barrier(6)

    def write():
        try:
            barrier.wait()
            results.append(store.put(PatternStream(size, seed), expected_digest=digest, expected_size=size))
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [BlobInfo(digest, size)] * 6
    assert sha256_digest(read_all(store, digest)) == digest
    assert [blob.digest for blob in store.iter_blobs()] == [digest]
    assert subject.leftovers() == []


def test_missing_blob_errors(store):
    assert not store.exists(ABSENT_DIGEST)
    with pytest.raises(BlobNotFound) as raised:
        store.stat(ABSENT_DIGEST)
    assert raised.value.digest == ABSENT_DIGEST
    with pytest.raises(BlobNotFound):
        store.open(ABSENT_DIGEST)
    with pytest.raises(BlobNotFound):
        store.open(ABSENT_DIGEST, offset=1, length=1)
    assert store.delete(ABSENT_DIGEST) is False


@pytest.mark.parametrize(
    "digest",
    ["sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32, "a" * 64, "sha256:../../etc/passwd", ""],
)
def test_malformed_digests_are_refused(store, digest):
    with pytest.raises(InvalidDigest):
        store.stat(digest)
    with pytest.raises(InvalidDigest):
        store.put(io.BytesIO(b"x"), expected_digest=digest)
    with pytest.raises(InvalidDigest):
        store.delete(digest)


def test_iteration_lists_every_blob_once(store):
    contents = [f"blob {n}".encode() for n in range(5)]
    expected = {BlobInfo(sha256_digest(data), len(data)) for data in contents}
    for data in contents:
        store.put(io.BytesIO(data))
    listed = list(store.iter_blobs())
    assert len(listed) == len(expected)
    assert set(listed) == expected


def test_delete_removes_only_that_blob(store):
    keep = store.put(io.BytesIO(b"keep")).digest
    drop = store.put(io.BytesIO(b"drop")).digest
    assert store.delete(drop) is True
    assert not store.exists(drop)
    assert store.delete(drop) is False
    assert [blob.digest for blob in store.iter_blobs()] == [keep]
    assert read_all(store, keep) == b"keep"


def test_usage_counts_stored_bytes(store):
    for data in (b"a" * 100, b"b" * 250, b""):
        store.put(io.BytesIO(data))
    usage = store.usage()
    assert (usage.used_bytes, usage.blob_count) == (350, 3)
    assert usage.free_bytes == store.free_bytes()
    if store.kind == "local":
        assert usage.free_bytes > 0
    else:
        assert usage.free_bytes is None


def test_probe_leaves_nothing_behind(subject):
    subject.store.probe()
    assert list(subject.store.iter_blobs()) == []
    assert subject.leftovers() == []


def test_sweeping_removes_abandoned_writes_but_no_blob(subject):
    store = subject.store
    kept = store.put(io.BytesIO(b"a finished blob")).digest
    subject.abandon_write()
    assert subject.leftovers() != []
    assert store.sweep_incomplete(older_than=time.time() - 3600) == 0
    assert subject.leftovers() != []
    assert store.sweep_incomplete(older_than=time.time() + 60) >= 1
    assert subject.leftovers() == []
    assert [blob.digest for blob in store.iter_blobs()] == [kept]


def test_identity_names_kind_and_location_without_credentials(store):
    assert store.identity.startswith(f"{store.kind}:")
    assert "secret" not in store.identity.lower()


def test_200_mb_blob_streams_in_bounded_memory(subject):
    store = subject.store
    size, seed = 200 * MiB, 42
    digest = pattern_digest(size, seed)
    tracemalloc.start()
    try:
        assert store.put(PatternStream(size, seed), expected_digest=digest, expected_size=size).digest == digest
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        hasher = hashlib.sha256()
        with store.open(digest) as stream:
            while chunk := stream.read(MiB):
                hasher.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"sha256:{hasher.hexdigest()}" == digest
    # A few buffers (stream block, copy chunk, one S3 part) are fine; the blob is 200 MB.
    assert write_peak < 32 * MiB, write_peak
    assert read_peak < 32 * MiB, read_peak
    assert subject.leftovers() == []
