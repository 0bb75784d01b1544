"""Ingest throughput and memory, side by side with the single-pass floor on the same bytes.

Builds a bundle of the given size (mostly image layers of pseudo-random content), starts the
registry (gunicorn web server and a Celery worker, as `make run` does, on their own data
directory), uploads the bundle through the API and waits for the job. Then, on the same bundle,
runs the floor: what any ingest must at least do — read every member once, sha256 it, inflate
and sha256 the layers, write the bytes to disk. Prints, per size:

- seconds from upload complete (job created) to published, and MB/s of bundle;
- the floor's seconds and the ratio ours/floor (target <= 1.3);
- peak RSS of the web processes and of the worker processes (target <= 200 MB, flat with size).

    .venv/bin/python bench/ingest.py                 # 1 GiB
    .venv/bin/python bench/ingest.py --sizes-gib 1,4 # flatness of memory
    .venv/bin/python bench/ingest.py --workers 1,2   # worker scaling: the same bundle with 1 and 2 processes
    .venv/bin/python bench/ingest.py --broker redis://127.0.0.1:6379/14 --database postgres://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

from tests.bundles import AssetSpec, ImageSpec, make_bundle  # noqa: E402  (on the path set above)
from tests.processes import manage  # noqa: E402

MiB = 1024 * 1024
LAYER_SIZE = 128 * MiB
CHUNK = MiB


def build_bundle(directory: Path, size: int) -> Path:
    layers = max(1, (size - 16 * MiB) // LAYER_SIZE)
    layer_size = (size - 16 * MiB) // layers
    built = make_bundle(
        directory,
        assets=[AssetSpec("payload", "payload.bin", 16 * MiB, 1)],
        images=[ImageSpec("server", "bench/large:1", [layer_size] * layers, seed=7)],
    )
    return built.path


def floor_seconds(bundle: Path, scratch: Path) -> float:
    """Read every member once; sha256 it; inflate and sha256 layers; write it to disk."""
    started = time.perf_counter()
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            layer = info.filename.startswith("images/blobs/") and info.file_size > MiB
            digest, inflated = hashlib.sha256(), hashlib.sha256()
            inflater = zlib.decompressobj(31)
            with archive.open(info) as member, open(scratch, "wb") as out:
                while chunk := member.read(CHUNK):
                    digest.update(chunk)
                    if layer:
                        inflated.update(inflater.decompress(chunk))
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    scratch.unlink()
    return time.perf_counter() - started


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


def wait_ready(base_url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit("The registry did not come up.")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_one(size_gib: float, workers: int, args) -> dict:
    size = int(size_gib * 1024 * MiB)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-", dir=args.work_dir) as work:
        work = Path(work)
        print(f"[{size_gib} GiB] building the bundle...", flush=True)
        bundle = build_bundle(work / "bundle", size)
        bundle_size = bundle.stat().st_size

        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_URL")}
        env.update(REGISTRY_DATA_DIR=str(work / "data"), DISK_FREE_THRESHOLD_BYTES="1",
                   MAX_BUNDLE_BYTES=str(64 * 1024**3), INGEST_PROGRESS_INTERVAL="0.5")
        if args.broker:
            env["CELERY_BROKER_URL"] = args.broker
        if args.database:
            env["DATABASE_URL"] = args.database
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=PROJECT_DIR, env=env,
                       check=True)
        token = manage("tokens", "create", "--name", "bench", "--scope", "write", env=env).stdout.strip()
        port = args.port
        launcher = subprocess.Popen(
            [sys.executable, "manage.py", "runregistry", "--bind", f"127.0.0.1:{port}",
             "--worker-concurrency", str(workers)],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base_url)
            print(f"[{size_gib} GiB] uploading {bundle_size / MiB:.0f} MiB...", flush=True)
            with open(bundle, "rb") as body:
                response = requests.post(f"{base_url}/api/v1/bundles/", data=body, timeout=3600,
                                         headers={"Content-Type": "application/vnd.dcos.universe.package+zip;version=v1",
                                                  "Authorization": f"Bearer {token}"})
            response.raise_for_status()
            # The job exists from the upload's first byte: time ingest from the moment the upload completed.
            uploaded_at = datetime.now(timezone.utc)
            job_url = response.headers["Location"]
            while True:
                job = requests.get(job_url, timeout=10).json()
                if job["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.2)
            if job["state"] != "succeeded":
                raise SystemExit(f"Ingest failed: {job['error']}")
            pids = descendants(launcher.pid)
            web_rss = peak_rss_mb(pids, "gunicorn")
            worker_rss = peak_rss_mb(pids, "celery")
        finally:
            launcher.send_signal(signal.SIGINT)
            launcher.wait(timeout=120)
        ours = (parse_time(job["finished_at"]) - uploaded_at).total_seconds()
        stages = ", ".join(
            f"{stage['stage']} {(parse_time(stage['finished_at']) - parse_time(stage['started_at'])).total_seconds():.2f}s"
            for stage in job["stages"]
        )
        print(f"[{size_gib} GiB] stages: {stages}", flush=True)
        print(f"[{size_gib} GiB] floor on the same bytes...", flush=True)
        floor = floor_seconds(bundle, work / "floor-scratch")
        return {"size_gib": size_gib, "workers": workers, "bundle_mb": bundle_size / MiB, "ours": ours,
                "floor": floor, "web_rss": web_rss, "worker_rss": worker_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gib", default="1", help="Comma-separated bundle sizes in GiB (default 1).")
    parser.add_argument("--workers", default="2",
                        help="Celery worker processes; several (e.g. 1,2) run the same sizes with each, side by side.")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--broker", help="Broker URL (default: the embedded filesystem broker).")
    parser.add_argument("--database", help="Database URL (default: the embedded SQLite).")
    parser.add_argument("--work-dir", help="Where to build bundles and keep blobs (default: the temp dir).")
    args = parser.parse_args()
    results = [run_one(float(size), int(workers), args)
               for size in args.sizes_gib.split(",") for workers in args.workers.split(",")]

    print()
    print(f"{'bundle':>10} {'workers':>7} {'ours s':>8} {'MB/s':>8} {'floor s':>8} {'ours/floor':>10} "
          f"{'web RSS MB':>11} {'worker RSS MB':>14}")
    for row in results:
        print(f"{row['bundle_mb']:>7.0f} MB {row['workers']:7d} {row['ours']:8.2f} {row['bundle_mb'] / row['ours']:8.1f} "
              f"{row['floor']:8.2f} {row['ours'] / row['floor']:10.2f} {row['web_rss']:11.1f} {row['worker_rss']:14.1f}")


if __name__ == "__main__":
    main()
