"""The proof that web and workers scale apart with nothing shared but PostgreSQL, Redis and S3.

Two web processes and two Celery workers, each with a data directory (and so a staging directory)
of its own, on the suite's PostgreSQL, Redis and SeaweedFS. Bundles are uploaded resumably with
their chunks alternating between the two webs, both workers ingest, and the images are pulled, and
an asset downloaded, through the web that did not take the commit: with the real dockerd and skopeo.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from access.tokens import create_token
from ingest.models import IngestJob
from registry_site.celery import app as celery_app
from tests.actors import TEST_ACTOR
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.packages_app.test_registry_v2 import GREETING, busybox_bundle
from tests.processes import free_port, registry_env, wait_until
from tests.stack import RegistryProcess, web_command, worker_command
from tests.services import redis_url
from tests.streams import pattern_digest

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.s3, pytest.mark.docker]
MiB = 1024 * 1024
COSMOS_ACCEPT = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5"
# Not a multiple of anything: chunk boundaries fall inside the 8 MiB parts, which span chunks sent to both webs.
CHUNK = 3 * MiB + 12345


class SharedNothing:
    """Two webs and two workers; each process's data directory is its own."""

    def __init__(self, directory: Path, settings, database_url: str, broker_url: str):
        self.directory = directory
        directory.mkdir(parents=True)
        common = dict(
            DATABASE_URL=database_url, CELERY_BROKER_URL=broker_url, STORAGE_URL=settings.STORAGE_URL,
            S3_ENDPOINT_URL=settings.S3_ENDPOINT_URL, S3_ACCESS_KEY_ID=settings.S3_ACCESS_KEY_ID,
            S3_SECRET_ACCESS_KEY=settings.S3_SECRET_ACCESS_KEY, S3_REGION=settings.S3_REGION,
            # The one secret every process of a deployment shares (a DC/OS secret), not a file in a data directory.
            SECRET_KEY="shared-nothing-but-this-secret", DISK_FREE_THRESHOLD_BYTES="1", UPLOADS_PER_MINUTE="0",
            LOG_FORMAT="console", INGEST_PROGRESS_INTERVAL="0.2",
        )
        self.webs = []
        for name in ("web-a", "web-b"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = registry_env(directory / name, PUBLIC_BASE_URL=url, **common)
            self.webs.append((url, RegistryProcess(name, web_command(port), env, directory / f"{name}.log")))
        self.workers = [
            RegistryProcess(name, worker_command(name, 1), registry_env(directory / name, **common),
                            directory / f"{name}.log")
            for name in ("worker-a", "worker-b")
        ]

    def start(self) -> None:
        for _, web in self.webs:
            web.start()
        for worker in self.workers:
            worker.start()
        for url, _ in self.webs:
            wait_until(lambda: requests.get(f"{url}/health/ready", timeout=5).ok, timeout=90, what=f"{url} ready")

    def stop(self) -> None:
        for process in [*self.workers, *(web for _, web in self.webs)]:
            process.kill()

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def staged_files(self) -> list[str]:
        """Whatever any process left in a staging directory on its own disk."""
        return [str(path) for path in self.directory.glob("*/staging/**/*") if path.is_file()]


@pytest.fixture
def shared_nothing(postgres_database, s3_storage, settings, tmp_path, use_broker):
    broker = redis_url()
    use_broker(broker)
    celery_app.control.purge()
    registry = SharedNothing(tmp_path / "processes", settings, postgres_database, broker)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


def upload_alternating(http: requests.Session, webs: list[str], path: Path) -> str:
    """A resumable upload opened and committed at the first web, its chunks sent to each web in turn; the job URL."""
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    opened = http.post(f"{webs[0]}/api/v1/uploads/", json={"size": len(data), "sha256": digest,
                                                           "file_name": path.name}, timeout=30)
    assert opened.status_code == 201, opened.text
    session = urlsplit(opened.json()["url"]).path
    for number, offset in enumerate(range(0, len(data), CHUNK)):
        chunk = data[offset:offset + CHUNK]
        response = http.put(f"{webs[number % 2]}{session}", data=chunk, timeout=60, headers={
            "Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{len(data)}"})
        assert response.status_code == 200, response.text
    committed = http.post(f"{webs[0]}{session}commit/", json={}, timeout=60)
    assert committed.status_code == 202, committed.text
    return committed.headers["Location"]


def finished(http: requests.Session, job_url: str) -> dict:
    def ended():
        job = http.get(job_url, timeout=10).json()
        return job if job["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(ended, timeout=300, what=f"job {job_url} to end", interval=0.5)


def test_two_webs_and_two_workers_share_nothing_but_the_database_the_broker_and_s3(
        shared_nothing, s3_storage, tmp_path, docker_client, skopeo):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {create_token('uploader', 'write', actor=TEST_ACTOR)[1]}"
    upload_web, pull_web = (url for url, _ in shared_nothing.webs)
    payload = AssetSpec("payload", "payload.tgz", 5 * MiB + 3, 7)
    hello = make_bundle(tmp_path / "hello", assets=[payload], images=[
        ImageSpec("server", "example/hello:1.0.0", [6 * MiB, 5 * MiB, 4 * MiB, 3 * MiB, 100_000])])
    busybox, busybox_digest = busybox_bundle(tmp_path / "busybox", "example/busybox:1.36")
    assert hello.path.stat().st_size > 2 * 8 * MiB

    jobs = [upload_alternating(http, [upload_web, pull_web], path) for path in (hello.path, busybox)]
    for job_url in jobs:
        job = finished(http, job_url)
        assert job["state"] == "succeeded", job["error"]

    # Chunks of each upload reached both webs (each logs its requests).
    for web in ("web-a", "web-b"):
        assert shared_nothing.log(web).count("method=PUT") >= 2, f"{web} took no chunk"
    # Both workers ingested: each verified and stored layers of its own.
    for worker in ("worker-a", "worker-b"):
        assert "verified and stored" in shared_nothing.log(worker), f"{worker} stored no layer"
    # Nothing was staged on any process's own disk, and nothing is left staged in S3.
    assert shared_nothing.staged_files() == []
    assert list(s3_storage.iter_staged()) == [] and list(s3_storage.iter_staged_uploads()) == []
    assert IngestJob.objects.filter(state="succeeded").count() == 2

    # Pulled through the other web: dockerd runs the image, skopeo copies the big one unchanged.
    host = urlsplit(pull_web).netloc
    image = docker_client.images.pull(f"{host}/example/busybox@{busybox_digest}")
    try:
        assert docker_client.containers.run(image.id, remove=True, network_mode="none").decode().strip() == GREETING
    finally:
        docker_client.images.remove(image.id, force=True)
    layout = tmp_path / "copy"
    skopeo("copy", "--src-tls-verify=false", f"docker://{host}/example/hello:1.0.0", f"oci:{layout}:1.0.0")
    copied = json.loads(skopeo("inspect", f"oci:{layout}:1.0.0"))
    assert copied["Digest"] == hello.manifest.images[0].manifest_digest

    # And an asset, at the URL the other web's /repo gives a cluster.
    repo = requests.get(f"{pull_web}/repo", headers={"Accept": COSMOS_ACCEPT}, timeout=30)
    [package] = [package for package in repo.json()["packages"] if package["name"] == "hello"]
    asset_url = package["resource"]["assets"]["uris"]["payload"]
    assert asset_url.startswith(pull_web)
    download = requests.get(asset_url, timeout=60)
    assert download.status_code == 200
    assert "sha256:" + hashlib.sha256(download.content).hexdigest() == pattern_digest(payload.size, payload.seed)
