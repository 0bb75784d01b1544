"""An outage of a service the registry depends on answers 503 with Retry-After, never a 500."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError
from django import db
from django.test import Client

from blobs.drivers import BlobStoreUnavailable
from blobs.store import blob_store
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import IngestJob
from packages_app import catalogue_api
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.processes import wait_until

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


# --- For real: a registry whose own PostgreSQL and SeaweedFS are stopped (tests/stack.py) -------------------

COSMOS = {"Accept": ",".join(f"application/vnd.dcos.universe.repo+json;charset=utf-8;version={version}"
                             for version in ("v5", "v4", "v3")),
          "User-Agent": "cosmos/0.6.0 dcos/1.12.0"}


def publish(stack, tmp_path, name: str):
    built = make_bundle(tmp_path / name, name=name, images=[ImageSpec("server", f"example/{name}:1", [300_000])])
    response = stack.http().post(f"{stack.url}/api/v1/bundles/", data=built.path.read_bytes(), timeout=60,
                                 headers={"Content-Type": BUNDLE_MEDIA_TYPE})
    assert response.status_code == 202, response.text
    job, _ = stack.wait_for_job(response.headers["Location"], timeout=60)
    assert job["state"] == "succeeded", job["error"]
    return built


def assert_unavailable(response, retry_after: str = "3") -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["Retry-After"] == retry_after


@pytest.mark.slow
def test_with_its_database_stopped_the_api_answers_503_and_each_repository_its_last_answer(stack, tmp_path):
    publish(stack, tmp_path, "seen-by-edge")
    publish(stack, tmp_path, "seen-by-all")
    http = stack.http()
    cluster = {"name": "edge", "sees_all_packages": False, "rules": [{"package_name": "seen-by-edge"}]}
    assert http.post(f"{stack.url}/api/v1/clusters/", json=cluster, timeout=10).status_code == 201
    edge_token = http.post(f"{stack.url}/api/v1/tokens/", json={"name": "edge", "scope": "read", "cluster": "edge"},
                           timeout=10).json()["token"]
    requests_for = {
        "the whole catalogue": (f"{stack.url}/repo", COSMOS),
        "a cluster's repository": (f"{stack.url}/clusters/edge/repo", COSMOS),
        "a cluster's token": (f"{stack.url}/repo", {**COSMOS, "Authorization": f"Bearer {edge_token}"}),
    }
    before = {what: requests.get(url, headers=headers, timeout=10) for what, (url, headers) in requests_for.items()}
    assert {package["name"] for package in before["a cluster's repository"].json()["packages"]} == {"seen-by-edge"}

    stack.postgres.stop()
    try:
        for url in (f"{stack.url}/api/v1/packages/", f"{stack.url}/api/v1/jobs/"):
            response = http.get(url, timeout=30)
            assert_unavailable(response)
            assert response.json()["code"] == "service_unavailable"
            assert response.json()["details"] == {"component": "database"}
        for what, (url, headers) in requests_for.items():
            during = requests.get(url, headers=headers, timeout=30)
            assert during.status_code == 200, (what, during.text)
            assert (during.content, during.headers["ETag"]) == (before[what].content, before[what].headers["ETag"]), what
        # Nobody asked this before the database went away.
        assert_unavailable(requests.get(f"{stack.url}/clusters/edge/repo", timeout=30,
                                        headers={**COSMOS, "User-Agent": "cosmos/0.4.0 dcos/1.10.0"}))
    finally:
        stack.postgres.start()
    assert http.get(f"{stack.url}/api/v1/packages/", timeout=30).status_code == 200


@pytest.mark.slow
def test_with_its_blob_store_stopped_downloads_answer_503(stack, tmp_path):
    publish(stack, tmp_path, "downloads")
    [package] = [package for package in requests.get(f"{stack.url}/repo", headers=COSMOS, timeout=10).json()["packages"]
                 if package["name"] == "downloads"]
    resource_url = next(iter(package["resource"]["assets"]["uris"].values()))
    assert resource_url.startswith(f"{stack.url}/resource/")
    manifest_url = f"{stack.url}/v2/example/downloads/manifests/1"
    layer = requests.get(manifest_url, timeout=10).json()["layers"][0]["digest"]
    blob_url = f"{stack.url}/v2/example/downloads/blobs/{layer}"

    stack.seaweedfs.kill()
    try:
        resource = requests.get(resource_url, timeout=60)
        assert_unavailable(resource)
        assert resource.json()["details"] == {"component": "blob store"}
        for url in (blob_url, manifest_url):
            pull = requests.get(url, timeout=60)
            assert_unavailable(pull)
            assert pull.json()["errors"][0]["code"] == "UNAVAILABLE"
        # What needs no blob still answers.
        assert requests.head(resource_url, timeout=60).status_code == 200
    finally:
        stack.seaweedfs.start()
    # Served again as soon as the store serves (its volumes come back a moment after its S3 API).
    wait_until(lambda: requests.get(resource_url, timeout=60).status_code == 200, timeout=60,
               what="the download to be served again", interval=0.5)
