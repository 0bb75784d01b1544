"""copy_blob moves verified bytes between stores, once."""

from __future__ import annotations

import io

import pytest

from blobs.drivers import BlobNotFound, DigestMismatch
from blobs.drivers.local import LocalBlobStore
from blobs.drivers.transfer import copy_blob


def test_copies_once_and_refuses_damaged_or_missing_blobs(tmp_path):
    source, target = LocalBlobStore(tmp_path / "a"), LocalBlobStore(tmp_path / "b")
    info = source.put(io.BytesIO(b"payload"))
    assert copy_blob(source, target, info.digest, info.size) is True
    assert target.open(info.digest).read() == b"payload"
    assert copy_blob(source, target, info.digest, info.size) is False

    damaged = source.put(io.BytesIO(b"original"))
    (source.root / "blobs" / "sha256" / damaged.digest[7:9] / damaged.digest[7:]).write_bytes(b"tampered")
    with pytest.raises(DigestMismatch):
        copy_blob(source, target, damaged.digest)
    assert not target.exists(damaged.digest)
    with pytest.raises(BlobNotFound):
        copy_blob(source, target, "sha256:" + "0" * 64)
