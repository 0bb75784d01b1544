"""The S3 driver tells an outage (no answer, a 5xx) from a refusal: the first is BlobStoreUnavailable, which the
web answers with 503 and ingest retries; a refusal stays what it is."""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from blobs.drivers import BlobNotFound, BlobStoreUnavailable
from blobs.drivers.s3 import S3BlobStore
from tests.processes import free_port
from tests.streams import sha256_digest

DIGEST = sha256_digest(b"some blob")


def client(endpoint_url: str):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name="us-east-1", aws_access_key_id="key", aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, s3={"addressing_style": "path"}),
    )


@pytest.mark.parametrize("operation", [
    lambda store: store.stat(DIGEST),
    lambda store: store.open(DIGEST),
    lambda store: store.exists(DIGEST),
    lambda store: store.delete(DIGEST),
    lambda store: store.put(io.BytesIO(b"some blob")),
    lambda store: list(store.iter_blobs()),
    lambda store: store.sweep_incomplete(0),
    lambda store: store.probe(),
], ids=["stat", "open", "exists", "delete", "put", "iter_blobs", "sweep_incomplete", "probe"])
def test_a_server_that_does_not_answer_is_unavailable(operation):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = S3BlobStore("registry-bucket", "prefix", client=client(endpoint))
    with pytest.raises(BlobStoreUnavailable) as raised:
        operation(store)
    # The operator's log gets the driver's error; the message (which clients may see) names no host or bucket.
    assert isinstance(raised.value.__cause__, EndpointConnectionError)
    assert "127.0.0.1" not in str(raised.value) and "registry-bucket" not in str(raised.value)


def stubbed(status: int, code: str) -> tuple[S3BlobStore, Stubber]:
    s3 = client("http://s3.example:9000")
    stubber = Stubber(s3)
    stubber.add_client_error("head_object", service_error_code=code, http_status_code=status)
    stubber.activate()
    return S3BlobStore("bucket", client=s3), stubber


@pytest.mark.parametrize("status, code", [(500, "InternalError"), (503, "SlowDown")])
def test_a_server_error_is_unavailable(status, code):
    store, _ = stubbed(status, code)
    with pytest.raises(BlobStoreUnavailable) as raised:
        store.stat(DIGEST)
    assert isinstance(raised.value.__cause__, ClientError)


def test_a_refusal_is_not_an_outage():
    store, _ = stubbed(403, "AccessDenied")
    with pytest.raises(ClientError):
        store.stat(DIGEST)
    store, _ = stubbed(404, "NoSuchKey")
    with pytest.raises(BlobNotFound):
        store.stat(DIGEST)
