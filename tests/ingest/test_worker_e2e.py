"""Ingest for real: HTTP uploads to a live server, real Celery worker processes on Redis, PostgreSQL,
local disk and SeaweedFS; and a worker killed with SIGKILL in the middle of a big bundle."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest
import requests

from access.tokens import create_token
from blobs.store import blob_store
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import ArrivedLayer, IngestJob
from packages_app.models import PackageVersion, VersionBlob
from registry_site.celery import app as celery_app
from tests.actors import TEST_ACTOR
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.processes import PROJECT_DIR, registry_env, stop, wait_until
from tests.services import redis_url

pytestmark = [pytest.mark.slow, pytest.mark.redis]
MiB = 1024 * 1024


@pytest.fixture
def live_registry(postgres_database, live_server, settings, tmp_path, use_broker):
    """Web (the live server) and the settings a worker needs to share its database, broker and staging."""
    broker = redis_url()
    use_broker(broker)
    celery_app.control.purge()
    settings.STAGING_DIR = tmp_path / "staging"
    settings.STAGING_DIR.mkdir()
    settings.DISK_FREE_THRESHOLD_BYTES = 1
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {create_token('uploader', 'write', actor=TEST_ACTOR)[1]}"
    return {
        "url": live_server.url,
        "http": http,
        "env": registry_env(
            tmp_path / "worker-data",
            DATABASE_URL=postgres_database,
            CELERY_BROKER_URL=broker,
            STAGING_DIR=str(settings.STAGING_DIR),
            CELERY_VISIBILITY_TIMEOUT="5",
            INGEST_PROGRESS_INTERVAL="0.2",
        ),
    }


def start_worker(env: dict, concurrency: int = 2, name: str = "worker") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "registry_site", "worker", "--concurrency", str(concurrency),
         "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def kill_worker(worker: subprocess.Popen) -> None:
    """SIGKILL the worker and its pool processes at once: nothing gets to clean up or acknowledge."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def poll_job(base_url: str, job_url: str, timeout: float = 120) -> dict:
    def finished():
        job = requests.get(job_url, timeout=10).json()
        return job if job["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(finished, timeout=timeout, what=f"job {job_url} to finish", interval=0.5)


def upload_raw(registry: dict, path) -> str:
    with open(path, "rb") as bundle:
        response = registry["http"].post(f"{registry['url']}/api/v1/bundles/", data=bundle, timeout=60,
                                 headers={"Content-Type": BUNDLE_MEDIA_TYPE})
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def upload_resumable(registry: dict, path, chunk_size: int = 256 * 1024) -> str:
    size = path.stat().st_size
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    http = registry["http"]
    session = http.post(f"{registry['url']}/api/v1/uploads/", json={"size": size, "sha256": digest,
                                                                  "file_name": path.name}, timeout=10).json()
    with open(path, "rb") as bundle:
        offset = 0
        while chunk := bundle.read(chunk_size):
            response = http.put(session["url"], data=chunk, timeout=30,
                                    headers={"Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{size}"})
            assert response.status_code == 200, response.text
            offset += len(chunk)
    response = http.post(session["url"] + "commit/", json={}, timeout=10)
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def assert_published(job: dict, built) -> None:
    assert job["state"] == "succeeded", job["error"]
    version = PackageVersion.objects.get(package__name=built.metadata["name"], version=built.metadata["version"])
    store = blob_store()
    for link in VersionBlob.objects.filter(version=version):
        assert store.stat(link.blob_id).size == link.blob.size


def assert_published_and_nothing_else_stored(job: dict, built, store) -> None:
    assert_published(job, built)
    assert sorted(blob.digest for blob in store.iter_blobs()) == sorted(
        set(VersionBlob.objects.values_list("blob_id", flat=True)))


@pytest.mark.parametrize("storage", ["local", pytest.param("s3", marks=pytest.mark.s3)])
@pytest.mark.parametrize("upload", [upload_raw, upload_resumable], ids=["monolithic", "resumable"])
def test_upload_is_ingested_by_a_real_worker(storage, upload, live_registry, request, tmp_path):
    store = request.getfixturevalue(f"{storage}_storage")
    env = dict(live_registry["env"], STORAGE_URL=request.getfixturevalue("settings").STORAGE_URL)
    if storage == "s3":
        settings = request.getfixturevalue("settings")
        env.update(S3_ENDPOINT_URL=settings.S3_ENDPOINT_URL, S3_ACCESS_KEY_ID=settings.S3_ACCESS_KEY_ID,
                   S3_SECRET_ACCESS_KEY=settings.S3_SECRET_ACCESS_KEY, S3_REGION=settings.S3_REGION)
    built = make_bundle(tmp_path / "bundle", images=[
        ImageSpec("server", "example/hello:1.0.0", [3 * MiB, 2 * MiB, 100_000]),
    ])
    worker = start_worker(env)
    try:
        job = poll_job(live_registry["url"], upload(live_registry, built.path))
    finally:
        stop(worker)
    assert_published(job, built)
    assert {stage["stage"] for stage in job["stages"]} >= {"verify_images", "store", "publish"}
    assert store.exists(built.manifest.assets[0].digest)


def test_a_killed_worker_is_replaced_and_the_job_completes(live_registry, local_storage, settings, tmp_path):
    # The job's own layer tasks, after the upload: a worker is killed in one of them.
    settings.INGEST_ARRIVAL_MIN_BYTES = 2**62
    env = dict(live_registry["env"], STORAGE_URL=settings.STORAGE_URL)
    built = make_bundle(
        tmp_path / "bundle",
        assets=[AssetSpec("payload", "payload.bin", 20 * MiB, 5)],
        images=[ImageSpec("server", "example/big:1", [60 * MiB, 60 * MiB, 60 * MiB, 60 * MiB])],
    )
    worker = start_worker(env)
    try:
        job_url = upload_raw(live_registry, built.path)
        job_id = job_url.rstrip("/").rsplit("/", 1)[-1]

        def layers_under_way():
            stage = IngestJob.objects.get(pk=job_id).stages.filter(stage="verify_images").first()
            return stage is not None and stage.bytes_done > 0

        wait_until(layers_under_way, timeout=120, what="layers to be under way", interval=0.1)
        kill_worker(worker)
        assert IngestJob.objects.get(pk=job_id).state == "running"
        time.sleep(1)
        worker = start_worker(env)
        job = poll_job(live_registry["url"], job_url, timeout=240)
    finally:
        stop(worker)
    assert_published_and_nothing_else_stored(job, built, local_storage)


def test_a_worker_killed_while_it_checks_arrived_layers_is_replaced_and_the_job_completes(
        live_registry, local_storage, settings, tmp_path):
    env = dict(live_registry["env"], STORAGE_URL=settings.STORAGE_URL)
    built = make_bundle(tmp_path / "bundle", images=[ImageSpec("server", "example/big:1", [40 * MiB] * 4)])
    data, http = built.path.read_bytes(), live_registry["http"]
    session = http.post(f"{live_registry['url']}/api/v1/uploads/", json={"size": len(data), "file_name": "big.dcos"},
                        timeout=10).json()
    last = len(data) - 1  # the central directory's last byte: every layer has arrived before it
    worker = start_worker(env)
    try:
        response = http.put(session["url"], data=data[:last], timeout=60,
                            headers={"Content-Range": f"bytes 0-{last - 1}/{len(data)}"})
        assert response.status_code == 200, response.text
        wait_until(lambda: ArrivedLayer.objects.filter(state="stored").exists(), timeout=120,
                   what="a worker to store an arrived layer", interval=0.05)
        kill_worker(worker)
        assert ArrivedLayer.objects.filter(state="checking").exists(), "every layer was checked before the kill"
        response = http.put(session["url"], data=data[last:], timeout=60,
                            headers={"Content-Range": f"bytes {last}-{last}/{len(data)}"})
        assert response.status_code == 200, response.text
        job_url = http.post(session["url"] + "commit/", json={}, timeout=10).headers["Location"]
        worker = start_worker(env)
        # The killed worker's tasks come back after the broker's visibility timeout (5 s here).
        job = poll_job(live_registry["url"], job_url, timeout=240)
    finally:
        stop(worker)
    assert_published_and_nothing_else_stored(job, built, local_storage)
    assert not ArrivedLayer.objects.exists()


def layers_logged(log: str, job_id: str) -> set[str]:
    """The layers a worker's JSON log says it verified and stored for one job."""
    found = set()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("job_id") == job_id and entry.get("event", "").endswith("verified and stored"):
            found.add(entry["event"].split()[1])
    return found


def test_two_workers_ingest_two_bundles_at_once_and_share_one_images_layers(live_registry, local_storage, settings,
                                                                          tmp_path):
    env = dict(live_registry["env"], STORAGE_URL=settings.STORAGE_URL, LOG_FORMAT="json")
    big = make_bundle(tmp_path / "big", name="big", images=[ImageSpec("server", "example/big:1", [6 * MiB] * 6)])
    other = make_bundle(tmp_path / "other", name="other",
                        images=[ImageSpec("server", "example/other:1", [6 * MiB] * 4)])
    # Two worker processes of one pool slot each: all the parallelism comes from having two workers.
    workers = [start_worker(env, concurrency=1, name=f"worker{number}") for number in (1, 2)]
    try:
        job_urls = [upload_raw(live_registry, built.path) for built in (big, other)]
        jobs = [poll_job(live_registry["url"], job_url) for job_url in job_urls]
    finally:
        for worker in workers:
            stop(worker)
    logs = [worker.stdout.read() for worker in workers]
    for job, built in zip(jobs, (big, other)):
        assert_published(job, built)
    first, second = ((datetime.fromisoformat(job["started_at"]), datetime.fromisoformat(job["finished_at"]))
                     for job in jobs)
    assert first[0] < second[1] and second[0] < first[1], "the two jobs did not run at the same time"
    big_layers = {layer["digest"] for layer in json.loads(
        local_storage.open(big.manifest.images[0].manifest_digest).read())["layers"]}
    per_worker = [layers_logged(log, jobs[0]["id"]) for log in logs]
    assert per_worker[0] | per_worker[1] == big_layers
    assert per_worker[0] and per_worker[1], f"one worker verified every layer: {per_worker}"
