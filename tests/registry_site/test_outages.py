"""An outage of a service the registry depends on answers 503 with Retry-After, never a 500."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from django import db
from django.test import Client

from blobs.drivers import BlobStoreUnavailable
from packages_app import catalogue_api

pytestmark = pytest.mark.django_db


def failing_with(monkeypatch, error: Exception):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(catalogue_api, "package_summaries", broken)
    return Client(raise_request_exception=False).get("/api/v1/packages/")


@pytest.mark.parametrize("error, component", [
    (db.OperationalError("could not connect to server: Connection refused (db.internal:5432)"), "database"),
    (db.InterfaceError("connection already closed"), "database"),
    (BlobStoreUnavailable("open"), "blob store"),
])
def test_an_unreachable_service_answers_503_with_retry_after(monkeypatch, settings, error, component):
    settings.OUTAGE_RETRY_AFTER_SECONDS = 7
    response = failing_with(monkeypatch, error)
    assert response.status_code == 503 and response["Retry-After"] == "7"
    assert response.json() == {"code": "service_unavailable", "details": {"component": component},
                               "message": f"The registry's {component} is unavailable; retry in a moment."}
    # Nothing of where the service lives reaches the client.
    assert b"internal" not in response.content


def test_a_refusal_of_the_blob_store_is_still_the_registry_s_own_failure(monkeypatch):
    forbidden = ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")
    response = failing_with(monkeypatch, forbidden)
    assert response.status_code == 500 and response.json()["code"] == "server_error"


def test_a_job_that_failed_inside_the_registry_names_no_internal_endpoint(registry, client, tmp_path, monkeypatch):
    from blobs.store import blob_store
    from ingest.models import IngestJob
    from tests.bundles import AssetSpec, make_bundle

    store = blob_store()

    def unreachable(*args, **kwargs):
        raise EndpointConnectionError(endpoint_url="http://seaweed.internal:8333/registry-bucket/uploads/4f2a")

    monkeypatch.setattr(store, "put", unreachable)
    built = make_bundle(tmp_path / "b", assets=[AssetSpec("payload", "hello-1.0.tgz", 4096, 3)], images=[])
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(),
                           content_type="application/vnd.dcos.universe.package+zip;version=v1")
    job = client.get(response.json()["url"]).json()
    assert job["state"] == "failed" and job["error"]["code"] == "internal_error"
    assert "internal" not in job["error"]["message"] and "bucket" not in job["error"]["message"]
    assert IngestJob.objects.get().error_message == job["error"]["message"]
