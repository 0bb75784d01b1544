"""One fixture, ``store``, that yields every blob store driver under test.

Each driver comes with ``leftovers()``: what a failed or finished write left outside the blob
namespace (temporary files, pending multipart uploads). It must always be empty.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from blobs.drivers import BlobStore
from blobs.drivers.local import LocalBlobStore
from blobs.drivers.s3 import S3BlobStore

# Small S3 parts so modest test blobs already take the multipart path.
S3_TEST_PART_SIZE = 5 * 1024 * 1024


@dataclass
class StoreUnderTest:
    store: BlobStore
    leftovers: Callable[[], list[str]]
    # Leaves what a writer killed in the middle of a blob would leave.
    abandon_write: Callable[[], None]


def _local(tmp_path) -> StoreUnderTest:
    store = LocalBlobStore(tmp_path / "storage")

    def abandon_write():
        (store.root / "_tmp" / "upload-killed").write_bytes(b"half a blob")

    return StoreUnderTest(store, lambda: sorted(p.name for p in (store.root / "_tmp").iterdir()), abandon_write)


def _s3(request) -> StoreUnderTest:
    client, bucket, connection = request.getfixturevalue("s3_bucket")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(bucket, prefix, part_size=S3_TEST_PART_SIZE, list_page_size=2, **connection)

    def leftovers() -> list[str]:
        pending = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        stray = [item["Key"] for item in listed if "/blobs/sha256/" not in item["Key"]]
        return [f"multipart:{upload['Key']}" for upload in pending] + stray

    def abandon_write():
        key = f"{prefix}/blobs/sha256/00/" + "0" * 64
        client.create_multipart_upload(Bucket=bucket, Key=key)
        client.put_object(Bucket=bucket, Key=f"{prefix}/_uploads/killed", Body=b"half a blob")

    return StoreUnderTest(store, leftovers, abandon_write)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def subject(request, tmp_path) -> StoreUnderTest:
    return _local(tmp_path) if request.param == "local" else _s3(request)


@pytest.fixture
def store(subject) -> BlobStore:
    return subject.store
