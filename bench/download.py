"""A whole cluster pulling at once: 64 clients download the same 128 MiB layer, side by side with distribution.

For each storage (local disk, S3 on SeaweedFS) the same layer is served by this registry, started by its run
command (nginx in front of gunicorn; on S3, blob GETs answer 307 to presigned URLs), and by Debian's
``docker-registry`` (distribution) on the same storage (filesystem driver on local disk; s3 driver on the same
SeaweedFS, which redirects to presigned URLs too), with ``gunicorn alone`` (the serving path before nginx) as a
second baseline on local disk. For each server:

1. ``--clients`` concurrent clients (asyncio, in ``--client-processes`` processes, following redirects as docker
   does) GET the layer again and again for ``--seconds``: aggregate MB/s and errors. Meanwhile ``/health`` and
   ``/repo`` (``/v2/`` for distribution) are timed every 100 ms from the bench's own process (p50/p99, timeouts),
   and the resident memory of the web tier (nginx + gunicorn processes; distribution's one process) is sampled
   (peak, of all and of each).
2. Slowloris: ``--slow-sockets`` anonymous sockets trickle request headers (half) or bodies (half), a byte a
   second each, reopened when closed, for ``--slow-seconds``; ``/health`` is probed every 0.5 s with a 5 s
   timeout: how many timed out.

Goals (issue 15): >= 0.8x distribution's MB/s, 0 errors, ``/repo`` p99 < 250 ms under load, 0 slowloris timeouts.
Every server listens on 127.0.0.1 only and is stopped at the end. Needs Debian's nginx and docker-registry, and
SeaweedFS (``eval "$(scripts/seaweedfs.sh env)"`` sets TEST_S3_*); ports from ``--port-base``.

    .venv/bin/python bench/download.py [--seconds 20] [--storage local,s3] [--port-base 18150]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import requests
from botocore.config import Config

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.serve import stop, wait_http  # noqa: E402
from dcos_bundle.format import BUNDLE_MEDIA_TYPE  # noqa: E402
from tests.bundles import ImageSpec, make_bundle  # noqa: E402

MiB = 1024 * 1024
REPOSITORY, TAG = "bench/layer", "1.0"
READ_SIZE = 1024 * 1024


# The load: asyncio clients that follow redirects, counting the bytes they receive.

async def _download(url: str, buffer: bytearray, counter: list[int], redirects: int = 3) -> None:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (parts.hostname, parts.port or 80))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        await loop.sock_sendall(sock, f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
                                      f"User-Agent: bench\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                raise ConnectionError("closed before the headers ended")
            head += chunk
        head, _, body = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines[1:])}
        if status in (301, 302, 303, 307, 308) and redirects:
            sock.close()
            return await _download(headers["location"], buffer, counter, redirects - 1)
        if status != 200:
            raise ConnectionError(f"status {status}")
        remaining = int(headers["content-length"]) - len(body)
        counter[0] += len(body)
        view = memoryview(buffer)
        while remaining > 0:
            count = await loop.sock_recv_into(sock, view[:min(READ_SIZE, remaining)])
            if count == 0:
                raise ConnectionError("closed before the body ended")
            remaining -= count
            counter[0] += count
        counter[1] += 1
    finally:
        sock.close()


async def _client(url: str, deadline: float, counter: list[int], errors: list[str]) -> None:
    buffer = bytearray(READ_SIZE)
    while time.monotonic() < deadline:
        try:
            await _download(url, buffer, counter)
        except (OSError, ValueError, KeyError) as error:
            errors.append(str(error))
            await asyncio.sleep(0.1)


def _load_process(url: str, clients: int, seconds: float, results) -> None:
    counter, errors = [0, 0], []

    async def run():
        deadline = time.monotonic() + seconds
        tasks = [asyncio.create_task(_client(url, deadline, counter, errors)) for _ in range(clients)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    results.put((counter[0], counter[1], errors[:5], len(errors)))


# Probes: requests timed from the bench's own process, one at a time.

class Prober(threading.Thread):
    def __init__(self, urls: list[str], interval: float, timeout: float):
        super().__init__(daemon=True)
        self.urls, self.interval, self.timeout = urls, interval, timeout
        self.times = {url: [] for url in urls}
        self.timeouts = {url: 0 for url in urls}
        self.failures = {url: 0 for url in urls}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            for url in self.urls:
                started = time.perf_counter()
                try:
                    # A new connection each time: a client of a loaded server, not a kept-alive one.
                    response = requests.get(url, timeout=self.timeout, headers={"Connection": "close"})
                    if response.status_code != 200:
                        self.failures[url] += 1
                    self.times[url].append(time.perf_counter() - started)
                except requests.RequestException:
                    self.timeouts[url] += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# Memory of the web tier: resident set of a tree of processes, from /proc.

def tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return pids


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class MemorySampler(threading.Thread):
    """Peak resident memory of each named process tree, and of all of them at once."""

    def __init__(self, roots: dict[str, int]):
        super().__init__(daemon=True)
        self.roots, self.stopping = roots, threading.Event()
        self.peaks = {name: 0 for name in [*roots, "total"]}

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            sizes = {name: rss_bytes(tree(root)) for name, root in self.roots.items()}
            sizes["total"] = sum(sizes.values())
            self.peaks = {name: max(peak, sizes[name]) for name, peak in self.peaks.items()}

    def stop(self) -> dict[str, int]:
        self.stopping.set()
        self.join()
        return self.peaks


# Slowloris: sockets that never finish a request.

class Slowloris(threading.Thread):
    PARTIALS = (b"GET /health HTTP/1.1\r\nHost: bench\r\n",
                b"POST /health HTTP/1.1\r\nHost: bench\r\nContent-Length: 100000\r\n\r\n")

    def __init__(self, port: int, count: int):
        super().__init__(daemon=True)
        self.port, self.count, self.stopping, self.sockets = port, count, threading.Event(), {}

    def _open(self, number: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(self.PARTIALS[number % 2])
            self.sockets[number] = sock
        except OSError:
            self.sockets.pop(number, None)

    def run(self) -> None:
        for number in range(self.count):
            self._open(number)
        while not self.stopping.wait(1):
            for number in range(self.count):
                sock = self.sockets.get(number)
                try:
                    if sock is None:
                        raise OSError
                    sock.send(b"x")
                except OSError:
                    if sock is not None:
                        sock.close()
                    self._open(number)  # a real attack comes back

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        for sock in self.sockets.values():
            sock.close()


# The servers.

class Server:
    """One server of the layer: its URLs and the processes whose memory counts."""

    def __init__(self, name: str, base_url: str, layer_url: str, probe_paths: list[str]):
        self.name, self.base_url, self.layer_url, self.probe_paths = name, base_url, layer_url, probe_paths
        self.processes: list[subprocess.Popen] = []
        self.web_pids: dict[str, int] = {}

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)


def registry_env(work: Path, port: int, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_URL", "SERVED_BY_NGINX")}
    env.update(REGISTRY_DATA_DIR=str(work), DISK_FREE_THRESHOLD_BYTES="1", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
               UPLOADS_PER_MINUTE="0", DJANGO_SETTINGS_MODULE="registry_site.settings", LOG_LEVEL="WARNING",
               **settings)
    return env


def manage(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, check=True,
                          capture_output=True, text=True).stdout


def start_registry(name: str, work: Path, port: int, front: str, bundle: Path | None, **settings: str) -> Server:
    """The run command on ``work`` (migrated, the bundle published on first use), web-only once it is."""
    env = registry_env(work, port, **settings)
    work.mkdir(parents=True, exist_ok=True)
    manage(env, "migrate", "--no-input", "-v0")
    log = open(work / f"run-{front}.log", "w")
    process = subprocess.Popen([sys.executable, "manage.py", "runregistry", "--bind", f"127.0.0.1:{port}",
                                "--front", front], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    wait_http(f"{base_url}/health")
    server = Server(name, base_url, "", ["/health", "/repo"])
    server.processes.append(process)
    if bundle is not None:
        token = manage(env, "tokens", "create", "--name", "bench", "--scope", "write").strip()
        with bundle.open("rb") as body:
            response = requests.post(f"{base_url}/api/v1/bundles/", data=body, timeout=3600, headers={
                "Content-Type": BUNDLE_MEDIA_TYPE, "Authorization": f"Bearer {token}"})
        response.raise_for_status()
        while (job := requests.get(response.headers["Location"], timeout=30).json())["state"] in ("queued",
                                                                                                  "running"):
            time.sleep(0.5)
        if job["state"] != "succeeded":
            raise SystemExit(f"{name}: ingest failed: {job['error']}")
    manifest = requests.get(f"{base_url}/v2/{REPOSITORY}/manifests/{TAG}", timeout=30).json()
    server.layer_url = f"{base_url}/v2/{REPOSITORY}/blobs/{manifest['layers'][0]['digest']}"
    # The web tier: the run command's children but its worker (gunicorn, and nginx when in front).
    log.flush()
    deadline = time.monotonic() + 10
    while "running on" not in (text := (work / f"run-{front}.log").read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in text.splitlines() if "running on" in line)
    children = dict(part.split(" pid ") for part in line.split("(")[1].split(")")[0].split(", "))
    server.web_pids = {"gunicorn" if name == "web" else name: int(pid) for name, pid in children.items()
                       if name != "worker"}
    return server


def start_distribution(name: str, work: Path, port: int, storage: str, layer: Path, digest: str,
                       s3: dict | None) -> Server:
    """distribution serving ``layer`` as the one layer of REPOSITORY, placed into its storage layout."""
    hex_digest = digest.split(":")[1]
    data_key = f"docker/registry/v2/blobs/sha256/{hex_digest[:2]}/{hex_digest}/data"
    link_key = f"docker/registry/v2/repositories/{REPOSITORY}/_layers/sha256/{hex_digest}/link"
    work.mkdir(parents=True, exist_ok=True)
    if s3 is None:
        root = work / "storage"
        (root / data_key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(layer, root / data_key)
        (root / link_key).parent.mkdir(parents=True, exist_ok=True)
        (root / link_key).write_text(digest)
        storage_config = {"filesystem": {"rootdirectory": str(root)}}
    else:
        client, bucket, prefix = s3["client"], s3["bucket"], f"distribution-{uuid.uuid4().hex[:8]}"
        client.upload_file(str(layer), bucket, f"{prefix}/{data_key}")
        client.put_object(Bucket=bucket, Key=f"{prefix}/{link_key}", Body=digest.encode())
        storage_config = {"s3": {"accesskey": s3["access_key"], "secretkey": s3["secret_key"], "region": s3["region"],
                                 "regionendpoint": s3["endpoint"], "bucket": bucket, "rootdirectory": f"/{prefix}",
                                 "secure": False, "v4auth": True}}
        # Its default: GETs of blobs redirect to presigned URLs (storage.redirect.disable: false).
    config = work / "config.yml"
    config.write_text(json.dumps({"version": 0.1, "log": {"level": "error"}, "storage": storage_config,
                                  "http": {"addr": f"127.0.0.1:{port}"}}))
    # Its AWS SDK refuses a custom CA bundle on its transport; the endpoint is plain HTTP anyway.
    env = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(work / "distribution.log", "w"), env=env)
    base_url = f"http://127.0.0.1:{port}"
    wait_http(f"{base_url}/v2/")
    server = Server(name, base_url, f"{base_url}/v2/{REPOSITORY}/blobs/{digest}", ["/v2/"])
    server.processes.append(process)
    server.web_pids = {"distribution": process.pid}
    return server


# Measuring one server.

def measure(server: Server, args) -> dict:
    check = requests.get(server.layer_url, timeout=600)
    if check.status_code != 200 or len(check.content) != args.layer_bytes:
        raise SystemExit(f"{server.name} does not serve the layer (status {check.status_code}).")
    with requests.get(server.layer_url, allow_redirects=False, stream=True, timeout=60) as first:
        answer = first.status_code  # 307: the client is sent to S3
    probe = Prober([server.base_url + path for path in server.probe_paths], interval=0.1, timeout=5)
    memory = MemorySampler(server.web_pids)
    results = multiprocessing.Queue()
    per_process = [args.clients // args.client_processes + (n < args.clients % args.client_processes)
                   for n in range(args.client_processes)]
    loaders = [multiprocessing.Process(target=_load_process, args=(server.layer_url, count, args.seconds, results))
               for count in per_process]
    probe.start()
    memory.start()
    started = time.monotonic()
    for loader in loaders:
        loader.start()
    outcomes = [results.get(timeout=args.seconds + 120) for _ in loaders]
    elapsed = time.monotonic() - started
    for loader in loaders:
        loader.join()
    probe.stop()
    peaks = memory.stop()
    received = sum(outcome[0] for outcome in outcomes)
    figures = {
        "blob GET answers": answer,
        "MB/s": received / elapsed / 1e6,
        "downloads": sum(outcome[1] for outcome in outcomes),
        "errors": sum(outcome[3] for outcome in outcomes),
        "peak RSS MiB": peaks.pop("total") / MiB,
        **{f"  of which {name}": peak / MiB for name, peak in peaks.items() if name != "distribution"},
    }
    for outcome in outcomes:
        if outcome[2]:
            print(f"  {server.name}: errors such as {outcome[2][:2]}", file=sys.stderr)
    for path, url in zip(server.probe_paths, probe.urls):
        figures[f"{path} p50 ms"] = percentile(probe.times[url], 0.5) * 1000
        figures[f"{path} p99 ms"] = percentile(probe.times[url], 0.99) * 1000
        figures[f"{path} timeouts"] = probe.timeouts[url]
        figures[f"{path} failures"] = probe.failures[url]
    # Slowloris.
    attack = Slowloris(int(urlsplit(server.base_url).port), args.slow_sockets)
    health = Prober([server.base_url + server.probe_paths[0]], interval=0.5, timeout=5)
    attack.start()
    time.sleep(1)
    health.start()
    time.sleep(args.slow_seconds)
    health.stop()
    attack.stop()
    url = health.urls[0]
    figures["slowloris probes"] = len(health.times[url]) + health.timeouts[url]
    figures["slowloris timeouts"] = health.timeouts[url]
    return figures


def print_table(title: str, columns: dict[str, dict]) -> None:
    rows = []
    for figures in columns.values():
        rows += [name for name in figures if name not in rows]
    width = max(len(name) for name in rows) + 2
    print(f"\n{title}")
    print(" " * width + "".join(f"{name:>24}" for name in columns))
    for row in rows:
        cells = []
        for figures in columns.values():
            value = figures.get(row)
            cells.append(f"{'-':>24}" if value is None else f"{value:>24.1f}" if isinstance(value, float)
                         else f"{value:>24}")
        print(f"{row:<{width}}" + "".join(cells))
    names = list(columns)
    ours, reference = columns[names[0]], columns[names[-1]]
    print(f"{'ours / distribution MB/s':<{width}}{ours['MB/s'] / reference['MB/s']:>24.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--layer-mib", type=int, default=128)
    parser.add_argument("--slow-sockets", type=int, default=256)
    parser.add_argument("--slow-seconds", type=float, default=30)
    parser.add_argument("--storage", default="local,s3")
    parser.add_argument("--port-base", type=int, default=18150)
    args = parser.parse_args()
    storages = args.storage.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    # nginx's workers may run as another user than the bench: they read the blobs under it.
    work.chmod(0o755)
    servers: list[Server] = []
    bucket = None
    try:
        print(f"Building a bundle whose image has one {args.layer_mib} MiB layer...", file=sys.stderr)
        built = make_bundle(work / "bundle", name="layer", assets=[],
                            images=[ImageSpec("server", f"{REPOSITORY}:{TAG}", [args.layer_mib * MiB])])
        tables = {}
        port = args.port_base
        if "local" in storages:
            local = start_registry("ours (nginx)", work / "local", port, "nginx", built.path)
            servers.append(local)
            layer_path, digest = layer_file(local, work)
            args.layer_bytes = layer_path.stat().st_size
            columns = {"ours (nginx)": measure_alone(local, servers, args)}
            alone = start_registry("ours (gunicorn alone)", work / "local", port + 1, "none", None)
            servers.append(alone)
            columns["gunicorn alone"] = measure_alone(alone, servers, args)
            distribution = start_distribution("distribution", work / "dist-local", port + 2, "local", layer_path,
                                              digest, None)
            servers.append(distribution)
            columns["distribution (fs)"] = measure_alone(distribution, servers, args)
            tables["Local disk"] = columns
        if "s3" in storages:
            s3 = s3_settings()
            bucket = s3["bucket"]
            s3["client"].create_bucket(Bucket=bucket)
            ours = start_registry("ours (S3 redirect)", work / "s3", port + 3, "nginx", built.path,
                                  STORAGE_URL=f"s3://{bucket}/registry", S3_ENDPOINT_URL=s3["endpoint"],
                                  S3_ACCESS_KEY_ID=s3["access_key"], S3_SECRET_ACCESS_KEY=s3["secret_key"],
                                  S3_REGION=s3["region"])
            servers.append(ours)
            layer_path, digest = layer_file(ours, work)
            args.layer_bytes = layer_path.stat().st_size
            columns = {"ours (S3 redirect)": measure_alone(ours, servers, args)}
            distribution = start_distribution("distribution", work / "dist-s3", port + 4, "s3", layer_path, digest, s3)
            servers.append(distribution)
            columns["distribution (s3)"] = measure_alone(distribution, servers, args)
            tables["S3 (SeaweedFS)"] = columns
        print(f"\n{args.clients} clients x {args.seconds:.0f} s on one {args.layer_bytes / MiB:.0f} MiB layer; "
              f"slowloris: {args.slow_sockets} sockets for {args.slow_seconds:.0f} s; {os.cpu_count()} CPUs")
        for title, columns in tables.items():
            print_table(title, columns)
    finally:
        for server in servers:
            server.stop()
        if bucket is not None:
            empty_bucket(s3["client"], bucket)
        shutil.rmtree(work, ignore_errors=True)


def measure_alone(server: Server, servers: list[Server], args) -> dict:
    """Measure one server, then stop it: each column has the machine to itself."""
    try:
        return measure(server, args)
    finally:
        server.stop()
        servers.remove(server)


def layer_file(server: Server, work: Path) -> tuple[Path, str]:
    """The layer as the registry serves it, in a file (distribution gets the same bytes)."""
    digest = server.layer_url.rsplit("/", 1)[1]
    path = work / f"layer-{digest.split(':')[1][:12]}"
    if not path.exists():
        hasher = hashlib.sha256()
        with requests.get(server.layer_url, stream=True, timeout=600) as response, path.open("wb") as file:
            response.raise_for_status()
            for chunk in response.iter_content(READ_SIZE):
                hasher.update(chunk)
                file.write(chunk)
        if f"sha256:{hasher.hexdigest()}" != digest:
            raise SystemExit("The layer does not hash to its digest.")
    return path, digest


def s3_settings() -> dict:
    endpoint = os.environ.get("TEST_S3_ENDPOINT_URL")
    if not endpoint:
        raise SystemExit('S3: set TEST_S3_* first (eval "$(scripts/seaweedfs.sh env)").')
    settings = {"endpoint": endpoint, "access_key": os.environ["TEST_S3_ACCESS_KEY_ID"],
                "secret_key": os.environ["TEST_S3_SECRET_ACCESS_KEY"],
                "region": os.environ.get("TEST_S3_REGION", "us-east-1"), "bucket": f"bench-{uuid.uuid4().hex[:12]}"}
    settings["client"] = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=settings["access_key"],
                                      aws_secret_access_key=settings["secret_key"], region_name=settings["region"],
                                      config=Config(s3={"addressing_style": "path"}))
    return settings


def empty_bucket(client, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    main()
