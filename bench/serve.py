"""Serving figures, side by side with reference servers in the same run.

1. Image pull: a ~1 GiB image (``--image-mib``) is ingested as a bundle, copied from our registry
   into Debian's ``docker-registry`` (distribution), then pulled from both with
   ``skopeo copy docker://… oci:…``; best of ``--repeat`` runs each. Target: ours <= 1.2x.
2. ``/repo`` under load: the whole Universe corpus is uploaded (metadata-only bundles), then
   ``wrk`` fetches ``/repo`` (Cosmos's headers, gzip) from us and the same bytes from nginx.
   Target: ours >= 0.5x nginx's requests/s.
3. Catalogue latency: 10,000 versions loaded; p95 of package list and search requests.
   Target: < 100 ms.
4. Page render: the same catalogue; p95 of the pages people open (the catalogue at ``/``, a
   search, a later page, a package page, a version page), beside the API's package list in the
   same run. Target: < 150 ms.

Needs Debian's skopeo, docker-registry, nginx-light and wrk, and the shared corpus. Every
server listens on 127.0.0.1 only and is stopped at the end.

    .venv/bin/python bench/serve.py [--image-mib 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from dcos_bundle.universe.migrate import metadata_from_package_directory  # noqa: E402  (on the path set above)
from tests.bundles import ImageSpec, make_bundle  # noqa: E402
from tests.corpus import package_dirs  # noqa: E402
from tests.processes import manage  # noqa: E402

MiB = 1024 * 1024
COSMOS_HEADERS = {
    "Accept": "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5,"
              "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4",
    "Accept-Encoding": "gzip",
    "User-Agent": "cosmos/0.6.0 dcos/2.0",
}
BUNDLE_TYPE = "application/vnd.dcos.universe.package+zip;version=v1"


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer.")


# Uploads need a write token, created when the registry starts.
UPLOADER = requests.Session()


def upload(base_url: str, data: bytes) -> None:
    response = UPLOADER.post(f"{base_url}/api/v1/bundles/", data=data, headers={"Content-Type": BUNDLE_TYPE},
                             timeout=3600)
    response.raise_for_status()
    job_url = response.headers["Location"]
    while (job := requests.get(job_url, timeout=10).json())["state"] in ("queued", "running"):
        time.sleep(0.05)
    if job["state"] != "succeeded":
        raise SystemExit(f"Upload failed: {job['error']}")


def registry_env(work: Path, port: int) -> dict[str, str]:
    """The bench registry's environment: embedded defaults under ``work``."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_URL")}
    env.update(REGISTRY_DATA_DIR=str(work / "registry"), DISK_FREE_THRESHOLD_BYTES="1",
               PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", WEB_CONCURRENCY="2", UPLOADS_PER_MINUTE="0")
    return env


def start_registry(work: Path, port: int) -> subprocess.Popen:
    env = registry_env(work, port)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=PROJECT_DIR, env=env, check=True)
    token = manage("tokens", "create", "--name", "bench", "--scope", "write", env=env).stdout.strip()
    UPLOADER.headers["Authorization"] = f"Bearer {token}"
    process = subprocess.Popen([sys.executable, "manage.py", "runregistry", "--bind", f"127.0.0.1:{port}"],
                               cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return process


def start_distribution(work: Path, port: int) -> subprocess.Popen:
    config = work / "distribution.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\n"
        "http: {addr: 127.0.0.1:%d}\n" % (work / "distribution", port)
    )
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/v2/")
    return process


def start_nginx(work: Path, port: int, body: bytes, content_type: str) -> subprocess.Popen:
    root = work / "nginx"
    root.mkdir()
    (root / "repo").write_bytes(body)
    (root / "repo.gz").write_bytes(gzip.compress(body))
    config = root / "nginx.conf"
    config.write_text(f"""
daemon off; worker_processes 2; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; sendfile on; gzip_static on;
  client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
  uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
  server {{ listen 127.0.0.1:{port}; root {root};
    location = /repo {{ default_type "{content_type}"; }} }}
}}
""")
    (root / "tmp").mkdir()
    # nginx's workers drop root: they must be able to read the files.
    for path in (work, root, root / "repo", root / "repo.gz"):
        path.chmod(0o755)
    process = subprocess.Popen(["nginx", "-c", str(config), "-p", str(root)])
    wait_http(f"http://127.0.0.1:{port}/repo")
    served = requests.get(f"http://127.0.0.1:{port}/repo", headers=COSMOS_HEADERS, timeout=10)
    if served.status_code != 200 or served.content != body:
        stop(process, signal.SIGQUIT)
        raise SystemExit(f"nginx does not serve the same bytes (status {served.status_code}).")
    return process


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def skopeo_pull_seconds(source: str, work: Path, repeat: int) -> float:
    times = []
    for attempt in range(repeat):
        target = work / f"pull-{attempt}"
        started = time.perf_counter()
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", source, f"oci:{target}:bench"],
                       check=True)
        times.append(time.perf_counter() - started)
        shutil.rmtree(target)
    return min(times)


def image_pull(base_url: str, port: int, work: Path, image_mib: int, repeat: int, dist_port: int) -> dict:
    layers = max(1, image_mib // 128)
    built = make_bundle(work / "image-bundle", name="bench-image", version="1.0.0", assets=[],
                        images=[ImageSpec("server", "bench/large:1", [image_mib * MiB // layers] * layers, seed=3)])
    upload(base_url, built.path.read_bytes())
    distribution = start_distribution(work, dist_port)
    try:
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                        f"docker://127.0.0.1:{port}/bench/large:1", f"docker://127.0.0.1:{dist_port}/bench/large:1"],
                       check=True)
        ours = skopeo_pull_seconds(f"docker://127.0.0.1:{port}/bench/large:1", work, repeat)
        theirs = skopeo_pull_seconds(f"docker://127.0.0.1:{dist_port}/bench/large:1", work, repeat)
    finally:
        stop(distribution)
    return {"ours": ours, "distribution": theirs, "mib": built.path.stat().st_size / MiB}


def upload_corpus(base_url: str) -> int:
    uploaded = set()
    for revision in package_dirs():
        metadata = metadata_from_package_directory(revision)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("metadata.json", json.dumps(metadata))
        key = (metadata["name"], metadata["version"])
        suffix = "?replace=true" if key in uploaded else ""
        response = UPLOADER.post(f"{base_url}/api/v1/bundles/{suffix}", data=buffer.getvalue(),
                                 headers={"Content-Type": BUNDLE_TYPE}, timeout=60)
        response.raise_for_status()
        uploaded.add(key)
    # Wait for the last jobs to finish.
    while requests.get(f"{base_url}/api/v1/jobs/?state=queued", timeout=10).json()["count"] or \
            requests.get(f"{base_url}/api/v1/jobs/?state=running", timeout=10).json()["count"]:
        time.sleep(0.5)
    return len(uploaded)


def wrk_requests_per_second(url: str, seconds: int) -> float:
    headers = [arg for name, value in COSMOS_HEADERS.items() for arg in ("-H", f"{name}: {value}")]
    output = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", *headers, url], check=True,
                            capture_output=True, text=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"{url} answered errors under load:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def repo_under_load(base_url: str, work: Path, nginx_port: int, seconds: int) -> dict:
    count = upload_corpus(base_url)
    response = requests.get(f"{base_url}/repo", headers={**COSMOS_HEADERS, "Accept-Encoding": "identity"},
                            timeout=60)
    response.raise_for_status()
    nginx = start_nginx(work, nginx_port, response.content, response.headers["Content-Type"])
    try:
        ours = wrk_requests_per_second(f"{base_url}/repo", seconds)
        theirs = wrk_requests_per_second(f"http://127.0.0.1:{nginx_port}/repo", seconds)
    finally:
        stop(nginx, signal.SIGQUIT)
    return {"packages": count, "bytes": len(response.content), "ours": ours, "nginx": theirs}


def load_versions(work: Path, port: int, count: int) -> None:
    """Insert ``count`` versions straight into the registry's database (the bench measures reads)."""
    subprocess.run([sys.executable, "bench/load_versions.py", str(count)], cwd=PROJECT_DIR,
                   env=registry_env(work, port), check=True)


def p95_ms(url: str, samples: int) -> float:
    session = requests.Session()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        session.get(url, timeout=30).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(times, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=8124)
    parser.add_argument("--parts", default="pull,repo,catalogue,pages", help="Which figures to measure (default: all).")
    args = parser.parse_args()
    base_url = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as work:
        work = Path(work)
        registry = start_registry(work, args.port)
        parts, lines = args.parts.split(","), []
        try:
            if "pull" in parts:
                pull = image_pull(base_url, args.port, work, args.image_mib, args.repeat, args.port + 1)
                lines.append(
                    f"image pull ({pull['mib']:.0f} MiB, skopeo copy, best of {args.repeat}): ours {pull['ours']:.2f}s, "
                    f"distribution {pull['distribution']:.2f}s, ratio {pull['ours'] / pull['distribution']:.2f} "
                    "(target <= 1.2)")
            if "repo" in parts:
                repo = repo_under_load(base_url, work, args.port + 2, args.load_seconds)
                lines.append(
                    f"/repo ({repo['packages']} versions, {repo['bytes'] / MiB:.1f} MiB, gzip, wrk 16 connections): "
                    f"ours {repo['ours']:.0f} req/s, nginx {repo['nginx']:.0f} req/s, "
                    f"ratio {repo['ours'] / repo['nginx']:.2f} (target >= 0.5)")
            if "catalogue" in parts:
                load_versions(work, args.port, args.versions)
                latency = {
                    "list": p95_ms(f"{base_url}/api/v1/packages/", 100),
                    "search": p95_ms(f"{base_url}/api/v1/packages/?search=queue", 100),
                    "detail": p95_ms(f"{base_url}/api/v1/packages/bench-queue-3/", 100),
                }
                lines.append(
                    f"catalogue p95 with {args.versions} versions: list {latency['list']:.1f} ms, search "
                    f"{latency['search']:.1f} ms, detail {latency['detail']:.1f} ms (target < 100)")
            if "pages" in parts:
                if "catalogue" not in parts:
                    load_versions(work, args.port, args.versions)
                pages = {
                    "/": p95_ms(f"{base_url}/", 100),
                    "/?q=queue": p95_ms(f"{base_url}/?q=queue", 100),
                    "/?after=bench-search-105": p95_ms(f"{base_url}/?after=bench-search-105", 100),
                    "package": p95_ms(f"{base_url}/packages/bench-queue-3/", 100),
                    "version": p95_ms(f"{base_url}/packages/bench-queue-3/1.7.0/", 100),
                }
                baseline = p95_ms(f"{base_url}/api/v1/packages/", 100)
                lines.append(
                    f"page render p95 with {args.versions} versions: "
                    + ", ".join(f"{page} {ms:.1f} ms" for page, ms in pages.items())
                    + f"; baseline API package list {baseline:.1f} ms (target < 150)")
        finally:
            stop(registry, signal.SIGINT)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
