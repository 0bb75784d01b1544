"""The run command's serving path on local storage: nginx in front of gunicorn. nginx sends the blob files the
registry decided to serve (X-Accel-Redirect) with the registry's headers, passes the client's address on, and
holds slow clients so that /health, /repo and uploads keep answering; without nginx, gunicorn serves alone."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from packages_app.blob_responses import ACCEL_BLOB_LOCATION
from packages_app.coordinates import package_coordinate
from registry_site.front import NginxFront, nginx_executable
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.processes import PROJECT_DIR, free_port, manage, registry_env, stop, wait_until
from tests.streams import PatternStream

pytestmark = pytest.mark.slow

ASSET_SIZE = 8 * 1024 * 1024
HEADER_TIMEOUT = 3
SLOW_SOCKETS = 64
# Generous: the machine running the suite may be loaded; a starved web tier does not answer at all.
PROBE_TIMEOUT = 10


class Running:
    """A registry started by the run command, and what was published in it."""

    def __init__(self, directory: Path, *args: str, **settings: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = registry_env(directory / "data", DISK_FREE_THRESHOLD_BYTES="1", UPLOADS_PER_MINUTE="0",
                                PUBLIC_BASE_URL=self.url, **settings)
        manage("migrate", "--verbosity", "0", env=self.env, timeout=300)
        self.token = manage("tokens", "create", "--name", "front", "--scope", "write", env=self.env).stdout.strip()
        self.log = directory / "run.log"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runregistry", "--bind", f"127.0.0.1:{self.port}", *args],
            cwd=PROJECT_DIR, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        wait_until(lambda: requests.get(f"{self.url}/health", timeout=2).ok, timeout=90, what="the run command")

    def upload(self, path: Path) -> requests.Response:
        with path.open("rb") as bundle:
            return requests.post(f"{self.url}/api/v1/bundles/", data=bundle, timeout=60, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": BUNDLE_MEDIA_TYPE})

    def publish(self, path: Path) -> None:
        response = self.upload(path)
        assert response.status_code == 202, response.text
        job = wait_until(lambda: (job := requests.get(response.json()["url"], timeout=10).json())["state"]
                         in ("succeeded", "failed") and job, timeout=120, what="the bundle to be ingested")
        assert job["state"] == "succeeded", job

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory):
    directory = tmp_path_factory.mktemp("front")
    running = Running(directory, "--front", "nginx", CLIENT_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT))
    try:
        built = make_bundle(directory / "bundle", assets=[AssetSpec("payload", "hello-1.0.tgz", ASSET_SIZE, 5)],
                            images=[ImageSpec("server", "example/hello:1.0.0", [300_000])])
        running.publish(built.path)
        entry = built.manifest.assets[0]
        running.asset = (f"/resource/{package_coordinate('hello', '1.0.0')}/{entry.digest}/hello-1.0.tgz",
                         entry.digest, PatternStream(ASSET_SIZE, 5).readall())
        yield running
    finally:
        running.stop()


def test_nginx_sends_the_blob_files_with_the_registrys_headers(behind_nginx):
    path, digest, content = behind_nginx.asset
    url = f"{behind_nginx.url}{path}"
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == content
    assert whole.headers["Server"] == "nginx" and whole.headers["ETag"] == f'"{digest}"'
    assert whole.headers["Content-Disposition"] == 'attachment; filename="hello-1.0.tgz"'
    assert whole.headers["Content-Type"] == "application/x-tar" and whole.headers["Accept-Ranges"] == "bytes"
    ranged = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == content[100:200]
    assert ranged.headers["Content-Range"] == f"bytes 100-199/{ASSET_SIZE}"
    # Several ranges: the whole file, as the registry itself answers them.
    assert requests.get(url, headers={"Range": "bytes=0-1,5-7"}, timeout=30).content == content
    # The registry's decisions: 304, 416, 404.
    assert requests.get(url, headers={"If-None-Match": f'"{digest}"'}, timeout=30).status_code == 304
    assert requests.get(url, headers={"Range": f"bytes={ASSET_SIZE}-"}, timeout=30).status_code == 416
    assert requests.get(url.replace(digest, "sha256:" + "0" * 64), timeout=30).status_code == 404
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(ASSET_SIZE)


def test_v2_blobs_through_nginx_carry_their_digest(behind_nginx):
    manifest = requests.get(f"{behind_nginx.url}/v2/example/hello/manifests/1.0.0", timeout=30).json()
    layer = manifest["layers"][0]["digest"]
    response = requests.get(f"{behind_nginx.url}/v2/example/hello/blobs/{layer}", timeout=30)
    assert response.status_code == 200 and "sha256:" + hashlib.sha256(response.content).hexdigest() == layer
    assert response.headers["Docker-Content-Digest"] == layer and response.headers["ETag"] == f'"{layer}"'
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_the_blob_files_are_not_reachable_directly(behind_nginx):
    _, digest, _ = behind_nginx.asset
    hex_digest = digest.split(":")[1]
    response = requests.get(f"{behind_nginx.url}{ACCEL_BLOB_LOCATION}blobs/sha256/{hex_digest[:2]}/{hex_digest}",
                            timeout=30)
    assert response.status_code == 404


def test_the_registry_sees_the_clients_address(behind_nginx):
    # /metrics is served to this host, and refused to an outside client that a proxy forwards.
    assert requests.get(f"{behind_nginx.url}/metrics", timeout=30).status_code == 200
    forwarded = requests.get(f"{behind_nginx.url}/metrics", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=30)
    assert forwarded.status_code == 403 and forwarded.json()["code"] == "permission_denied"
    # A client cannot claim another address: nginx sets X-Real-IP itself.
    assert requests.get(f"{behind_nginx.url}/metrics", headers={"X-Real-IP": "203.0.113.7"}, timeout=30).ok


class SlowClients:
    """Sockets that send a request's headers, or its body, a byte at a time; and downloads that are never read."""

    def __init__(self, port: int):
        self.port, self.sockets, self.stopping = port, [], threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def open(self, count: int) -> None:
        partials = [
            b"GET /health HTTP/1.1\r\nHost: registry\r\n",  # headers that never end
            b"POST /api/v1/jobs/ HTTP/1.1\r\nHost: registry\r\nContent-Length: 1000000\r\n\r\n{",  # a slow body
            b"POST /api/v1/bundles/ HTTP/1.1\r\nHost: registry\r\nContent-Length: 1000000\r\n"
            b"Content-Type: application/zip\r\n\r\nPK",  # a slow anonymous upload
        ]
        for number in range(count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.sendall(partials[number % len(partials)])
            self.sockets.append(sock)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stopping.wait(1):
            for sock in self.sockets:
                try:
                    sock.send(b"x")
                except OSError:
                    pass  # closed by the registry: what a timeout is for

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def held_downloads(port: int, path: str, count: int) -> list[socket.socket]:
    """Downloads that read one byte and stop: their answers fill the socket buffers and wait."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: registry\r\n\r\n".encode())
        sock.recv(1)
        held.append(sock)
    return held


def test_slow_clients_leave_health_repo_and_uploads_answering(behind_nginx, tmp_path):
    path, _, _ = behind_nginx.asset
    slow = SlowClients(behind_nginx.port)
    slow.open(SLOW_SOCKETS)
    downloads = held_downloads(behind_nginx.port, path, 16)
    try:
        def probe(endpoint: str) -> int:
            return requests.get(f"{behind_nginx.url}{endpoint}", timeout=PROBE_TIMEOUT).status_code

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(probe, ["/health", "/repo"] * 20))
        assert answers == [200] * 40
        built = make_bundle(tmp_path / "during", version="2.0.0", assets=[AssetSpec("payload", "p.tgz", 100_000, 1)],
                            images=[])
        assert behind_nginx.upload(built.path).status_code == 202
    finally:
        slow.close()
        for sock in downloads:
            sock.close()


def test_sockets_that_trickle_headers_are_closed_after_the_header_timeout(behind_nginx):
    sock = socket.create_connection(("127.0.0.1", behind_nginx.port), timeout=30)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: registry\r\n")
    started = time.monotonic()
    try:
        while sock.recv(1024):  # nothing, or a 408, then the end
            pass
    except ConnectionResetError:
        pass  # reset_timedout_connection
    finally:
        sock.close()
    assert HEADER_TIMEOUT - 1 < time.monotonic() - started < HEADER_TIMEOUT + 10


def test_without_nginx_gunicorn_serves_alone(tmp_path):
    # The embedded install brings no nginx: a PATH without it.
    without_nginx = os.pathsep.join(folder for folder in os.environ["PATH"].split(os.pathsep)
                                    if not (Path(folder) / "nginx").exists())
    assert shutil.which("nginx", path=without_nginx) is None
    running = Running(tmp_path, "--web-only", PATH=without_nginx)
    try:
        response = requests.get(f"{running.url}/health", timeout=10)
        assert response.ok and response.headers.get("Server") != "nginx"
    finally:
        running.stop()
    output = running.log.read_text()
    assert "nginx is not installed: gunicorn serves clients directly" in output
    assert "worker pid" not in output


def test_while_gunicorn_is_away_nginx_answers_503_in_the_apis_shape(settings, tmp_path, local_storage):
    settings.DATA_DIR = tmp_path
    port = free_port()
    nginx = subprocess.Popen(NginxFront(f"127.0.0.1:{port}", nginx_executable()).command(),
                             stderr=(tmp_path / "nginx.log").open("wb"))
    try:
        [response] = wait_until(lambda: [requests.get(f"http://127.0.0.1:{port}/health", timeout=5)], timeout=30,
                                what="nginx")
        assert response.status_code == 503 and response.headers["Retry-After"] == "10"
        assert response.json()["code"] == "service_unavailable"
    finally:
        stop(nginx)
