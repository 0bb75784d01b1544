"""Build and ingest at the speed of the bytes, side by side with the floors and the tools an operator knows, all
measured in the same run on the same image.

Per size: an image of that size (LAYERS layers of tar files, half text, half noise, as real layers mix them) is
made here and `docker load`ed into the engine DOCKER_HOST names (nothing is pulled). Then:

- build: `dcos-registry build` of the image, against `docker save | pigz -6` (parallel gzip) and `docker save`
  alone (the engine's export: the floor);
- ingest, with each number of worker processes: the registry (gunicorn and Celery, as `make run` starts them, on
  their own data directory and, given --database, a database of their own made on that server and dropped after)
  receives the built bundle through the API, in one request and by `dcos-registry add` (a resumable upload in
  chunks of its default size, as operators upload); upload start -> published, and upload complete -> published;
- the floors of that ingest on the same bundle, with as many threads as workers: read every member once, sha256
  it, inflate and sha256 the layers, write and fsync it; with the standard zlib and with zlib-ng;
- distribution: Debian's `docker-registry` receives the bundle's layers by `skopeo copy` (a push checks digests,
  not diff_ids);
- peak RSS of the web processes and of the worker processes.

    .venv/bin/python bench/ingest.py --sizes-gib 0.25,1 --workers 1,2 --port 18300 \\
        --broker redis://127.0.0.1:6379/3 --database postgres://postgres@127.0.0.1:5432/registry_bench
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib as standard_zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from zlib_ng import zlib_ng

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

from dcos_bundle.format import IMAGES_DIR  # noqa: E402  (on the path set above)
from tests.dcos_bundle.definitions import write_definition  # noqa: E402
from tests.processes import manage  # noqa: E402

MiB = 1024 * 1024
CHUNK = MiB
LAYERS = 8
FILE_SIZE = MiB
REFERENCE = "bench/large:1"
WORKER_READY = "ready."  # what a Celery worker logs once it consumes
UPLOADS = ("one request", "dcos-registry add")
LAYER_TYPE = "images/blobs/"


# -- the image ---------------------------------------------------------------------------------------------------

def layer_tar(path: Path, size: int, seed: int) -> str:
    """A layer of 1 MiB files, each half words (compressible) and half noise; return its diff_id."""
    generator = random.Random(seed)
    words = [generator.randbytes(generator.randint(2, 8)).hex().encode() for _ in range(4000)]
    text_pool = b" ".join(generator.choice(words) for _ in range(1_200_000))
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for number in range(max(1, size // FILE_SIZE)):
            start = generator.randrange(len(text_pool) - FILE_SIZE // 2)
            content = text_pool[start:start + FILE_SIZE // 2] + generator.randbytes(FILE_SIZE - FILE_SIZE // 2)
            info = tarfile.TarInfo(f"data/{seed}/{number:06d}.bin")
            info.size, info.mode, info.mtime = len(content), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(content))
    with open(path, "rb") as file:
        return "sha256:" + hashlib.file_digest(file, "sha256").hexdigest()


def make_image(directory: Path, size: int, layers: int) -> Path:
    """A `docker save` archive (the docker-archive layout `docker load` takes) of ``size`` bytes of layers."""
    directory.mkdir(parents=True)
    diff_ids, names = [], []
    for number in range(layers):
        name = f"layer{number}/layer.tar"
        (directory / name).parent.mkdir()
        diff_ids.append(layer_tar(directory / name, size // layers, seed=1000 + number))
        names.append(name)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    (directory / config_name).write_bytes(config)
    (directory / "manifest.json").write_text(json.dumps([{"Config": config_name, "RepoTags": [REFERENCE],
                                                          "Layers": names}]))
    archive = directory.with_suffix(".tar")
    with tarfile.open(archive, "w") as tar:
        for entry in ["manifest.json", config_name, *names]:
            tar.add(directory / entry, arcname=entry)
    shutil.rmtree(directory)
    return archive


def timed(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, cwd=PROJECT_DIR)
    return time.perf_counter() - started


def builds(work: Path) -> tuple[dict, Path]:
    """`dcos-registry build` against `docker save | pigz -6` and `docker save` alone; return the figures and bundle."""
    definition = write_definition(work / "definition", name="large", version="1.0.0",
                                  images={"server": REFERENCE})
    figures = {
        "docker_save": timed(f"docker save {REFERENCE} > {work}/save.tar"),
        "pigz": timed(f"docker save {REFERENCE} | pigz -6 > {work}/save.tar.gz"),
    }
    figures["save_mb"] = (work / "save.tar").stat().st_size / MiB
    figures["pigz_mb"] = (work / "save.tar.gz").stat().st_size / MiB
    (work / "save.tar").unlink()
    (work / "save.tar.gz").unlink()
    figures["build"] = timed(f"SOURCE_DATE_EPOCH=1700000000 {Path(sys.executable).parent}/dcos-registry build "
                             f"--build-definition-file {definition} --output-directory {work}/bundle --json >/dev/null")
    bundle = work / "bundle" / "large-1.0.0.dcos"
    figures["bundle_mb"] = bundle.stat().st_size / MiB
    return figures, bundle


# -- the floors --------------------------------------------------------------------------------------------------

def floor_member(bundle: Path, name: str, scratch: Path, library) -> None:
    with zipfile.ZipFile(bundle) as archive, archive.open(name) as member, open(scratch, "wb") as out:
        layer = name.startswith(LAYER_TYPE) and archive.getinfo(name).file_size > MiB
        digest, inflated = hashlib.sha256(), hashlib.sha256()
        inflater = library.decompressobj(31)
        while chunk := member.read(CHUNK):
            digest.update(chunk)
            if layer:
                inflated.update(inflater.decompress(chunk))
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    scratch.unlink()


def floor_seconds(bundle: Path, scratch_dir: Path, threads: int, library) -> float:
    """Every member read once, sha256, layers inflated and hashed, written and fsynced; members spread over threads."""
    with zipfile.ZipFile(bundle) as archive:
        names = [info.filename for info in archive.infolist()]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(floor_member, bundle, name, scratch_dir / f"floor-{number}", library)
                     for number, name in enumerate(names)]:
            done.result()
    return time.perf_counter() - started


# -- distribution ------------------------------------------------------------------------------------------------

def distribution_push(bundle: Path, work: Path, port: int) -> float:
    """Seconds for Debian's docker-registry to receive the bundle's image by `skopeo copy`, from its OCI layout."""
    layout = work / "layout"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(layout, [name for name in archive.namelist() if name.startswith(IMAGES_DIR)])
    config = work / "distribution.yml"
    config.write_text(json.dumps({"version": 0.1, "log": {"level": "error"}, "http": {"addr": f"127.0.0.1:{port}"},
                                  "storage": {"filesystem": {"rootdirectory": str(work / "distribution")}}}))
    log = open(work / "distribution.log", "wb")
    server = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v2/", work / "distribution.log")
        return timed(f"skopeo copy --quiet --insecure-policy --dest-tls-verify=false oci:{layout / IMAGES_DIR}:{REFERENCE} "
                     f"docker://127.0.0.1:{port}/{REFERENCE}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(layout)
        shutil.rmtree(work / "distribution", ignore_errors=True)


# -- the registry ------------------------------------------------------------------------------------------------

def descendants(pid: int) -> set[int]:
    found, frontier = set(), [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == parent and int(entry.name) not in found:
                    found.add(int(entry.name))
                    frontier.append(int(entry.name))
    return found


def peak_rss_mb(pids: set[int], marker: str) -> float:
    """Highest VmHWM (peak resident set) among the processes whose command line holds ``marker``."""
    peak = 0
    for pid in pids:
        try:
            if marker not in (Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")):
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def wait_ready(url: str, log: Path, logged: str = "", timeout: float = 120) -> None:
    """Until ``url`` answers and ``log`` holds ``logged`` (the registry's worker says it consumes: distribution, too,
    is up before its push)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200 and logged in log.read_text(errors="replace"):
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    tail = log.read_text(errors="replace").splitlines()[-60:] if log.exists() else ["(no log)"]
    raise SystemExit(f"{url} did not come up within {timeout:.0f} s. The last lines of {log}:\n" + "\n".join(tail))


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class OwnDatabase:
    """A database of its own for one run, on the server of the --database URL; dropped afterwards."""

    def __init__(self, url: str | None, name: str):
        self.url = None
        if url:
            parts = urlsplit(url)
            self._server = urlunsplit(parts._replace(path="/postgres"))
            self._name = f"{parts.path.lstrip('/') or 'registry'}_{name}"
            self.url = urlunsplit(parts._replace(path=f"/{self._name}"))

    def _execute(self, statement: str) -> None:
        with psycopg.connect(self._server, autocommit=True) as connection:
            connection.execute(statement)

    def __enter__(self) -> str | None:
        if self.url:
            self._execute(f'DROP DATABASE IF EXISTS "{self._name}"')
            self._execute(f'CREATE DATABASE "{self._name}"')
        return self.url

    def __exit__(self, *exc_info) -> None:
        if self.url:
            self._execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


def upload_in_one_request(base_url: str, token: str, bundle: Path) -> tuple[datetime, datetime, str]:
    """POST the bundle; when the upload started and completed, and the job's URL."""
    with open(bundle, "rb") as body:
        started = datetime.now(timezone.utc)
        response = requests.post(f"{base_url}/api/v1/bundles/", data=body, timeout=3600,
                                 headers={"Content-Type": "application/vnd.dcos.universe.package+zip;version=v1",
                                          "Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return started, datetime.now(timezone.utc), response.headers["Location"]


def upload_with_the_cli(base_url: str, token: str, bundle: Path) -> tuple[datetime, datetime, str]:
    """`dcos-registry add` (a resumable upload in chunks of its default size, as operators upload); the upload
    completed when its commit created the job."""
    started = datetime.now(timezone.utc)
    added = subprocess.run([str(Path(sys.executable).parent / "dcos-registry"), "add", "--dcos-file", str(bundle),
                            "--registry", base_url, "--token", token, "--no-wait", "--json"],
                           check=True, capture_output=True, text=True)
    job_url = json.loads(added.stdout)["job"]["url"]
    job = requests.get(job_url, timeout=10, headers={"Authorization": f"Bearer {token}"}).json()
    return started, parse_time(job["created_at"]), job_url


def ingest(bundle: Path, work: Path, workers: int, upload: str, label: str, args) -> dict:
    """Upload the bundle to a fresh registry with ``workers`` worker processes; the job's times and peak RSS."""
    run_dir = work / f"registry-{workers}-{UPLOADS.index(upload)}"
    run_dir.mkdir()
    with OwnDatabase(args.database, f"{label}_{workers}w_{UPLOADS.index(upload)}") as database:
        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_URL")}
        env.update(REGISTRY_DATA_DIR=str(run_dir / "data"), DISK_FREE_THRESHOLD_BYTES="1",
                   MAX_BUNDLE_BYTES=str(64 * 1024**3), INGEST_PROGRESS_INTERVAL="0.5")
        if args.broker:
            env["CELERY_BROKER_URL"] = args.broker
        if database:
            env["DATABASE_URL"] = database
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=PROJECT_DIR, env=env,
                       check=True)
        token = manage("tokens", "create", "--name", "bench", "--scope", "write", env=env).stdout.strip()
        log_path = run_dir / "launcher.log"
        log = open(log_path, "wb")
        launcher = subprocess.Popen(
            [sys.executable, "manage.py", "runregistry", "--bind", f"127.0.0.1:{args.port}",
             "--worker-concurrency", str(workers)],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{args.port}"
        try:
            wait_ready(f"{base_url}/health", log_path, logged=WORKER_READY)
            send = upload_in_one_request if upload == UPLOADS[0] else upload_with_the_cli
            upload_started, upload_completed, job_url = send(base_url, token, bundle)
            while True:
                job = requests.get(job_url, timeout=10, headers={"Authorization": f"Bearer {token}"}).json()
                if job["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            if job["state"] != "succeeded":
                raise SystemExit(f"Ingest failed: {job['error']}")
            pids = descendants(launcher.pid)
            web_rss = peak_rss_mb(pids, "gunicorn")
            worker_rss = peak_rss_mb(pids, "celery")
        finally:
            launcher.send_signal(signal.SIGINT)
            launcher.wait(timeout=120)
            log.close()
    published = parse_time(job["finished_at"])
    stages = {stage["stage"]: (parse_time(stage["finished_at"]) - parse_time(stage["started_at"])).total_seconds()
              for stage in job["stages"]}
    shutil.rmtree(run_dir)
    waited = (parse_time(job["started_at"]) - upload_completed).total_seconds()
    return {"workers": workers, "upload_kind": upload, "from_start": (published - upload_started).total_seconds(),
            "waited": waited,
            # What is neither the wait for the first task nor inside a stage: task hops between the stages.
            "between_stages": (published - upload_completed).total_seconds() - waited - sum(stages.values()),
            "from_complete": (published - upload_completed).total_seconds(),
            "upload": (upload_completed - upload_started).total_seconds(), "stages": stages,
            "web_rss": web_rss, "worker_rss": worker_rss}


def run_size(size_gib: float, args) -> dict:
    size = int(size_gib * 1024 * MiB)
    label = f"{size_gib:g}gib".replace(".", "_")
    with tempfile.TemporaryDirectory(prefix="ingest-bench-", dir=args.work_dir) as work:
        work = Path(work)
        print(f"[{size_gib:g} GiB] making and loading the image...", flush=True)
        archive = make_image(work / "image", size, args.layers)
        subprocess.run(["docker", "load", "--quiet", "--input", str(archive)], check=True, stdout=subprocess.DEVNULL)
        archive.unlink()
        try:
            print(f"[{size_gib:g} GiB] builds...", flush=True)
            build, bundle = builds(work)
        finally:
            subprocess.run(["docker", "rmi", REFERENCE], check=True, stdout=subprocess.DEVNULL)
        result = {"size_gib": size_gib, "build": build, "ingests": [], "floors": {}}
        for workers in args.workers:
            for upload in UPLOADS:
                print(f"[{size_gib:g} GiB] ingest with {workers} worker process(es), {upload}...", flush=True)
                result["ingests"].append(ingest(bundle, work, workers, upload, label, args))
                run = result["ingests"][-1]
                print(f"    first task after {run['waited']:.2f}s; stages: " + ", ".join(
                    f"{name} {seconds:.2f}s" for name, seconds in run["stages"].items()) +
                    f"; between stages {run['between_stages']:.2f}s", flush=True)
        print(f"[{size_gib:g} GiB] floors and distribution's push...", flush=True)
        for threads in args.workers:
            for name, library in (("zlib", standard_zlib), ("zlib-ng", zlib_ng)):
                result["floors"][(threads, name)] = floor_seconds(bundle, work, threads, library)
        result["distribution"] = distribution_push(bundle, work, args.distribution_port)
        return result


def report(results: list[dict]) -> None:
    print("\nThe machine is shared: every figure of a row comes from the same run, minutes apart.")
    for result in results:
        build = result["build"]
        print(f"\n== {result['size_gib']:g} GiB image: docker save {build['save_mb']:.0f} MB, bundle "
              f"{build['bundle_mb']:.0f} MB (pigz -6: {build['pigz_mb']:.0f} MB)")
        print(f"{'build':<40} {'seconds':>8} {'MB/s of save':>13} {'vs pigz':>8}")
        for name, key in (("dcos-registry build", "build"), ("docker save | pigz -6", "pigz"),
                          ("docker save (the floor)", "docker_save")):
            print(f"{name:<40} {build[key]:8.2f} {build['save_mb'] / build[key]:13.1f} {build[key] / build['pigz']:8.2f}")
        print(f"{'ingest (upload start or complete)':<40} {'seconds':>8} {'vs zlib floor':>13} {'vs zlib-ng':>10} {'vs distribution':>15} "
              f"{'web RSS':>8} {'worker RSS':>10}")
        for run in result["ingests"]:
            zlib_floor, ng_floor = result["floors"][(run["workers"], "zlib")], result["floors"][(run["workers"], "zlib-ng")]
            how = f"{run['workers']}w, {run['upload_kind']}"
            print(f"{'start -> published, ' + how:<40} {run['from_start']:8.2f} {'':>13} "
                  f"{'':>10} {run['from_start'] / result['distribution']:15.2f} {run['web_rss']:7.0f}M "
                  f"{run['worker_rss']:9.0f}M")
            print(f"{'complete -> published, ' + how:<40} {run['from_complete']:8.2f} "
                  f"{run['from_complete'] / zlib_floor:13.2f} {run['from_complete'] / ng_floor:10.2f}")
        for (threads, name), seconds in sorted(result["floors"].items()):
            print(f"{'floor, ' + name + ', ' + str(threads) + ' thread(s)':<40} {seconds:8.2f}")
        print(f"{'distribution push (skopeo copy)':<40} {result['distribution']:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gib", default="1", help="Comma-separated image sizes in GiB (default 1).")
    parser.add_argument("--workers", default="1,2", help="Worker processes (and floor threads), e.g. 1,2 (the default).")
    parser.add_argument("--layers", type=int, default=LAYERS, help=f"Layers of the image (default {LAYERS}).")
    parser.add_argument("--port", type=int, default=8123, help="The registry's port.")
    parser.add_argument("--distribution-port", type=int, help="docker-registry's port (default: --port + 1).")
    parser.add_argument("--broker", help="Broker URL (default: the embedded filesystem broker).")
    parser.add_argument("--database", help="A PostgreSQL URL: each run gets a database of its own on that server, "
                        "named after it (default: the embedded SQLite of each run's data directory).")
    parser.add_argument("--work-dir", help="Where to build images and bundles and keep blobs (default: the temp dir).")
    args = parser.parse_args()
    args.workers = [int(count) for count in args.workers.split(",")]
    args.distribution_port = args.distribution_port or args.port + 1
    if not os.environ.get("DOCKER_HOST"):
        raise SystemExit("Set DOCKER_HOST to the engine to build from (e.g. unix:///path/to/docker.sock).")
    results = []
    for size in args.sizes_gib.split(","):
        results.append(run_size(float(size), args))
        report(results[-1:])
    if len(results) > 1:
        report(results)


if __name__ == "__main__":
    main()
