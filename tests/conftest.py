from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import boto3
import docker
import pytest
import requests
from botocore.config import Config
from django.conf import settings
from django.db import connection
from django.test import Client

from access.tokens import create_token
from blobs.store import blob_store
from registry_site.celery import app as celery_app
from tests.actors import TEST_ACTOR
from tests.asset_server import AssetServer
from tests.services import s3_connection, service_missing
from tests.stack import Stack


# The registry's programs keep a generated key in the data directory before Django reads the settings
# (registry_site.data_dir.prepare); the suite is not one of them: it signs with a key of its own.
settings.SECRET_KEY = os.environ.get("SECRET_KEY") or "signs-only-what-the-test-suite-makes"


def pytest_collection_finish(session):
    """In CI the catalogue tests must run on PostgreSQL, as production does."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("CI", "").lower() == "true" and "postgresql" not in engine:
        pytest.exit(f"CI must run against PostgreSQL (DATABASE_URL), not {engine}.", returncode=3)


@pytest.fixture
def local_storage(settings, tmp_path):
    """Point the registry at a fresh local blob store for one test."""
    settings.STORAGE_URL = (tmp_path / "storage").as_uri()
    blob_store.cache_clear()
    yield blob_store()
    blob_store.cache_clear()


@pytest.fixture
def use_broker(monkeypatch):
    """Send this test's tasks (and broker checks) to ``url``."""
    def use(url):
        # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        monkeypatch.setattr(celery_app.conf, "broker_url", url)

    return use


@pytest.fixture
def postgres_database(transactional_db):
    """The test database, which other processes (workers) can reach: PostgreSQL only."""
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL", "DATABASE_URL does not name a PostgreSQL database")
    params = connection.settings_dict
    credentials = params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
    return f"postgres://{credentials}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


@pytest.fixture(scope="session")
def s3_bucket():
    connection = s3_connection()
    client = boto3.client(
        "s3",
        endpoint_url=connection["endpoint_url"],
        aws_access_key_id=connection["access_key_id"],
        aws_secret_access_key=connection["secret_access_key"],
        region_name=connection["region"],
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = f"conformance-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket, connection
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_storage(settings, s3_bucket):
    """Point the registry at a fresh prefix of the real S3 server for one test."""
    _, bucket, connection = s3_bucket
    settings.STORAGE_URL = f"s3://{bucket}/registry-{uuid.uuid4().hex[:8]}"
    settings.S3_ENDPOINT_URL = connection["endpoint_url"]
    settings.S3_ACCESS_KEY_ID = connection["access_key_id"]
    settings.S3_SECRET_ACCESS_KEY = connection["secret_access_key"]
    settings.S3_REGION = connection["region"]
    blob_store.cache_clear()
    yield blob_store()
    blob_store.cache_clear()


@pytest.fixture
def asset_server():
    server = AssetServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def docker_client():
    """A client of the Docker engine that DOCKER_HOST names (scripts/dockerd.sh starts one)."""
    host = os.environ.get("DOCKER_HOST")
    if not host:
        service_missing("Docker engine", "DOCKER_HOST is not set")
    try:
        # from_env asks the engine for its API version, so it fails here when nothing answers.
        client = docker.from_env()
    except (docker.errors.DockerException, requests.RequestException) as error:
        service_missing("Docker engine", f"{host} does not answer ({error})")
    yield client
    client.close()


@pytest.fixture
def eager_tasks():
    """Tasks run in-process, at once, when sent (the pipeline without a worker)."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture
def registry(transactional_db, local_storage, settings, tmp_path, eager_tasks):
    """A registry with an empty local blob store and staging, running ingest inline."""
    settings.STAGING_DIR = tmp_path / "staging"
    settings.STAGING_DIR.mkdir()
    settings.INGEST_PROGRESS_INTERVAL = 0
    # Uploads are refused on a low disk: the tests must not depend on this machine's free space.
    settings.DISK_FREE_THRESHOLD_BYTES = 1
    # Tests upload as fast as they can; the rate limit has its own tests.
    settings.UPLOADS_PER_MINUTE = 0
    return local_storage


@pytest.fixture
def operator_token(db) -> str:
    """An admin-scope token: what an operator's tooling uploads and manages the registry with."""
    return create_token("test operator", "admin", actor=TEST_ACTOR)[1]


@pytest.fixture
def client(operator_token):
    """The test client, carrying the operator's token: writes need one."""
    return Client(headers={"Authorization": f"Bearer {operator_token}"})


@pytest.fixture
def anonymous_client():
    return Client()


# Bounds of the fault tests' registry (tests/stack.py): short, so an outage is waited out, a lost task sent
# again and a job ended within seconds instead of minutes.
FAULT_SETTINGS = {
    # Retries after 1, 2, 2 and 2 seconds: an outage of up to about 7 s is waited out.
    "INGEST_OUTAGE_RETRIES": "4",
    "INGEST_OUTAGE_BACKOFF_MAX_SECONDS": "2",
    "INGEST_REDISPATCH_AFTER_SECONDS": "10",
    "INGEST_SWEEP_INTERVAL_SECONDS": "1",
    "INGEST_STUCK_AFTER_SECONDS": "60",
    "CELERY_VISIBILITY_TIMEOUT": "60",
    "INGEST_PROGRESS_INTERVAL": "0.2",
    "OUTAGE_RETRY_AFTER_SECONDS": "3",
    # One attempt per S3 request: the task's retries are what is under test.
    "AWS_MAX_ATTEMPTS": "1",
    # The web streams blobs itself, so that its answers to an outage of S3 are under test (a redirected download
    # goes to S3 without the web).
    "S3_REDIRECT_DOWNLOADS": "false",
}


@pytest.fixture(scope="session")
def own_stack(tmp_path_factory):
    """A registry with its own PostgreSQL, Redis and SeaweedFS, which fault tests may stop and kill."""
    stack = Stack(tmp_path_factory.mktemp("stack"), FAULT_SETTINGS)
    try:
        stack.start()
        yield stack
    finally:
        stack.destroy()


@pytest.fixture
def stack(own_stack):
    """The fault tests' registry with every process and service running, whatever the last test stopped."""
    own_stack.ensure_up()
    return own_stack


@pytest.fixture
def skopeo(tmp_path):
    """Runs skopeo with the given arguments and answers its output."""
    executable = shutil.which("skopeo")
    if not executable:
        service_missing("skopeo", "it is not installed (apt-get install skopeo)")
    # Our own policy: the copy must not depend on the machine's /etc/containers/policy.json.
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))

    def run(*args: str) -> bytes:
        return subprocess.run([executable, "--policy", str(policy), *args], capture_output=True, check=True,
                              timeout=120).stdout

    return run
