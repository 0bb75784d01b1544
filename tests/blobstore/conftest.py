"""One fixture, ``store``, that yields every blob store driver under test.

Each driver comes with ``leftovers()``: what a failed or finished write left outside the blob
namespace (temporary files, pending multipart uploads). It must always be empty.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from ingest.blobstore import BlobStore
from ingest.blobstore.local import LocalBlobStore
from ingest.blobstore.s3 import S3BlobStore

# Small S3 parts so modest test blobs already take the multipart path.
S3_TEST_PART_SIZE = 5 * 1024 * 1024


@dataclass
class StoreUnderTest:
    store: BlobStore
    leftovers: Callable[[], list[str]]


def _local(tmp_path) -> StoreUnderTest:
    store = LocalBlobStore(tmp_path / "storage")
    return StoreUnderTest(store, lambda: sorted(p.name for p in (store.root / "_tmp").iterdir()))


def _s3(request) -> StoreUnderTest:
    client, bucket, connection = request.getfixturevalue("s3_bucket")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(bucket, prefix, part_size=S3_TEST_PART_SIZE, list_page_size=2, **connection)

    def leftovers() -> list[str]:
        pending = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        stray = [item["Key"] for item in listed if "/blobs/sha256/" not in item["Key"]]
        return [f"multipart:{upload['Key']}" for upload in pending] + stray

    return StoreUnderTest(store, leftovers)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def subject(request, tmp_path) -> StoreUnderTest:
    return _local(tmp_path) if request.param == "local" else _s3(request)


@pytest.fixture
def store(subject) -> BlobStore:
    return subject.store
