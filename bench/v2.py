"""/v2 latency with 10,000 published versions, side by side with the same requests on 10 versions.

Starts two registries, each on its own data directory (and database): one holding 10 published
versions, the other ``--versions``. Each version carries its own image (``bench/<package>:<version>``,
50 versions a package: a distinct manifest over a shared config and layer), published straight into
the catalogue and the blob store and indexed as the publish stage indexes it. Then each request is
timed ``--samples`` times on both registries, one request at a time, alternating between them so
that both see the same machine: ``/health`` (the floor: no database), ``/v2/`` with a cluster's
token (the cost of its authentication), a manifest GET by tag and by digest, a manifest GET by tag
with the cluster's token (its rules filter versions), a blob HEAD and a tags list. Prints p50 and
p95 of each, and the ratio of the p95s (target: about 1, the index keeps lookups flat).

    .venv/bin/python bench/v2.py                       # embedded SQLite
    .venv/bin/python bench/v2.py --postgres postgres://postgres@127.0.0.1:5432   # two scratch databases there
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import psycopg
import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.serve import stop, wait_http  # noqa: E402

# Publishes the versions, in a child process whose environment names the registry.
LOADER = Path(__file__).with_name("v2_load.py")
BASELINE_VERSIONS = 10
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
# The image every timed request names: the first version of the first package, in both registries.
REPOSITORY, TAG = "bench/bench-0", "1.0.0"


# Measuring: the parent process, over HTTP.

class Registry:
    def __init__(self, work: Path, port: int, database: str | None, versions: int):
        self.versions, self.address = versions, f"127.0.0.1:{port}"
        self.base_url = f"http://{self.address}"
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_URL")}
        self.env.update(REGISTRY_DATA_DIR=str(work), PUBLIC_BASE_URL=self.base_url, DISK_FREE_THRESHOLD_BYTES="1",
                        WEB_CONCURRENCY="2", DJANGO_SETTINGS_MODULE="registry_site.settings")
        if database:
            self.env["DATABASE_URL"] = database
        self.session = requests.Session()

    def start(self, stack: ExitStack) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=PROJECT_DIR, env=self.env,
                       check=True)
        started = time.perf_counter()
        loaded = subprocess.run([sys.executable, str(LOADER), str(self.versions)], env=self.env, check=True,
                                capture_output=True, text=True).stdout
        print(f"published {self.versions} versions in {time.perf_counter() - started:.0f}s", flush=True)
        loaded = json.loads(loaded.splitlines()[-1])
        self.token, self.layer = loaded["token"], loaded["layer"]
        process = subprocess.Popen([sys.executable, "manage.py", "runregistry", "--bind", self.address],
                                   cwd=PROJECT_DIR, env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        stack.callback(stop, process, signal.SIGINT)
        wait_http(f"{self.base_url}/health")
        self.manifest = self.get("GET", f"/v2/{REPOSITORY}/manifests/{TAG}", {})[1].headers["Docker-Content-Digest"]

    def get(self, method: str, path: str, headers: dict) -> tuple[float, requests.Response]:
        started = time.perf_counter()
        response = self.session.request(method, self.base_url + path, headers=headers, timeout=30)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000, response

    def timed_requests(self) -> dict[str, tuple[str, str, dict]]:
        accept = {"Accept": MANIFEST_MEDIA_TYPE}
        cluster = {"Authorization": f"Bearer {self.token}"}
        return {
            "/health (floor)": ("GET", "/health", {}),
            "/v2/ with a cluster token (auth floor)": ("GET", "/v2/", cluster),
            "manifest GET by tag": ("GET", f"/v2/{REPOSITORY}/manifests/{TAG}", accept),
            "manifest GET by digest": ("GET", f"/v2/{REPOSITORY}/manifests/{self.manifest}", accept),
            "manifest GET by tag, cluster token": ("GET", f"/v2/{REPOSITORY}/manifests/{TAG}", {**accept, **cluster}),
            "blob HEAD": ("HEAD", f"/v2/{REPOSITORY}/blobs/{self.layer}", {}),
            "tags list": ("GET", f"/v2/{REPOSITORY}/tags/list", {}),
        }


def side_by_side(registries: list[Registry], samples: int) -> dict[str, list[tuple[float, float]]]:
    """(p50, p95) in ms of every request on each registry, the registries taking turns request by request."""
    figures = {}
    for name in registries[0].timed_requests():
        requests_of = [registry.timed_requests()[name] for registry in registries]
        times = [[] for _ in registries]
        for _ in range(10):  # warm the connections and the web workers
            for registry, request in zip(registries, requests_of):
                registry.get(*request)
        for sample in range(samples):
            # Alternate who goes first, so neither always follows the other.
            order = range(len(registries)) if sample % 2 else reversed(range(len(registries)))
            for index in order:
                times[index].append(registries[index].get(*requests_of[index])[0])
        figures[name] = [(statistics.median(series), statistics.quantiles(series, n=20)[18]) for series in times]
    return figures


def scratch_databases(stack: ExitStack, server: str, count: int) -> list[str]:
    """``count`` new empty databases on the PostgreSQL ``server``, dropped at the end."""
    names = [f"bench_v2_{uuid.uuid4().hex[:8]}" for _ in range(count)]
    with psycopg.connect(server + "/postgres", autocommit=True) as connection:
        for name in names:
            connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server + "/postgres", autocommit=True) as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.callback(drop)
    return [f"{server}/{name}" for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--port", type=int, default=8126, help="The baseline's port; the other listens on the next.")
    parser.add_argument("--postgres", help="A PostgreSQL server URL without database (default: embedded SQLite).")
    args = parser.parse_args()

    counts = (BASELINE_VERSIONS, args.versions)
    with tempfile.TemporaryDirectory(prefix="v2-bench-") as work, ExitStack() as stack:
        databases = scratch_databases(stack, args.postgres.rstrip("/"), 2) if args.postgres else [None, None]
        registries = [Registry(Path(work) / str(count), args.port + index, database, count)
                      for index, (count, database) in enumerate(zip(counts, databases))]
        for registry in registries:
            registry.start(stack)
        figures = side_by_side(registries, args.samples)

    print(f"\n/v2 latency in ms, {args.samples} requests each, {'PostgreSQL' if args.postgres else 'SQLite'}:")
    columns = [f"{count} v. {cut}" for count in counts for cut in ("p50", "p95")] + ["p95 ratio"]
    print(f"{'request':40}" + "".join(f"{column:>14}" for column in columns))
    for name, ((small_p50, small_p95), (large_p50, large_p95)) in figures.items():
        values = [small_p50, small_p95, large_p50, large_p95, large_p95 / small_p95]
        print(f"{name:40}" + "".join(f"{value:14.2f}" for value in values))


if __name__ == "__main__":
    main()
