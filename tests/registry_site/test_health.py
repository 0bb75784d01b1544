import pytest

from blobs.store import blob_store
from tests.processes import free_port
from tests.services import redis_url


@pytest.fixture
def ready_client(client, local_storage, settings):
    settings.DISK_FREE_THRESHOLD_BYTES = 1
    return client


def test_liveness_is_cheap_and_always_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_reports_every_check(ready_client, local_storage):
    response = ready_client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "blob_store", "disk"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["blob_store"]["backend"] == local_storage.identity
    assert body["checks"]["disk"]["free_bytes"]["blob_store"] > 0


@pytest.mark.django_db
@pytest.mark.redis
def test_readiness_uses_the_real_redis_broker(ready_client, use_broker):
    use_broker(redis_url())
    check = ready_client.get("/health/ready").json()["checks"]["broker"]
    assert check == {"ok": True, "transport": "redis", "duration_ms": check["duration_ms"]}


@pytest.mark.django_db
def test_unreachable_broker_makes_the_registry_unready(ready_client, use_broker):
    use_broker("redis://127.0.0.1:1/0")
    response = ready_client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert "Error" in body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_low_disk_makes_the_registry_unready(ready_client, settings):
    settings.DISK_FREE_THRESHOLD_BYTES = 2**62
    response = ready_client.get("/health/ready")
    assert response.status_code == 503
    disk = response.json()["checks"]["disk"]
    assert disk["ok"] is False
    assert "blob_store" in disk["error"] and "data_dir" in disk["error"]
    assert disk["threshold_bytes"] == 2**62


@pytest.mark.django_db
def test_unwritable_blob_store_makes_the_registry_unready(ready_client, local_storage, monkeypatch):
    def refuse():
        raise PermissionError("read-only file system")

    monkeypatch.setattr(local_storage, "probe", refuse)
    response = ready_client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["blob_store"] == {
        "ok": False,
        "error": "PermissionError: read-only file system",
        "duration_ms": response.json()["checks"]["blob_store"]["duration_ms"],
    }


@pytest.mark.django_db
@pytest.mark.s3
def test_readiness_with_s3_storage(client, s3_storage, settings):
    settings.DISK_FREE_THRESHOLD_BYTES = 1
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert checks["blob_store"]["backend"] == s3_storage.identity
    # An object store has no free-space figure; only the data directory is checked.
    assert set(checks["disk"]["free_bytes"]) == {"data_dir"}


@pytest.mark.django_db
@pytest.mark.s3
def test_missing_s3_bucket_makes_the_registry_unready(client, s3_storage, settings):
    settings.STORAGE_URL = "s3://no-such-bucket-here/registry"
    blob_store.cache_clear()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert "NoSuchBucket" in response.json()["checks"]["blob_store"]["error"]


@pytest.mark.django_db
@pytest.mark.s3
def test_an_s3_server_that_does_not_answer_is_named_for_the_operator(client, s3_storage, settings, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    blob_store.cache_clear()
    response = client.get("/health/ready")
    assert response.status_code == 503
    error = response.json()["checks"]["blob_store"]["error"]
    assert error.startswith("BlobStoreUnavailable: The blob store did not answer (probe). (EndpointConnectionError: ")
    assert settings.S3_ENDPOINT_URL in error


def test_readiness_refuses_writes(client):
    assert client.post("/health/ready").status_code == 405
