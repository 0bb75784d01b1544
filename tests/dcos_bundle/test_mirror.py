"""dcos-registry mirror: the corpus's Universe repository, served over HTTP on loopback, becomes one bundle per chosen
version; a re-run keeps what is built and valid, and the failures are named."""

from __future__ import annotations

import errno
import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from dcos_bundle.mirror import chosen_versions, metadata_of, read_repository
from dcos_bundle.reader import BundleReader
from dcos_bundle.universe.resource import asset_urls
from dcos_bundle.universe.rules import package_rules
from tests.corpus import UNIVERSE_DIR
from tests.images import load_image
from tests.processes import PROJECT_DIR

pytestmark = pytest.mark.docker

UNIVERSE = UNIVERSE_DIR / "expected" / "universe.json.gz"
# The ports this suite may bind for servers of its own.
PORTS = range(18500, 18600)


@pytest.fixture(scope="module")
def repository_url():
    """The corpus's universe.json served as a /repo, on loopback."""
    body = gzip.decompress(UNIVERSE.read_bytes())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/repo" else 404)
            self.send_header("Content-Type", "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5")
            self.send_header("Content-Length", str(len(body) if self.path == "/repo" else 0))
            self.end_headers()
            if self.path == "/repo":
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            break
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/repo"
    server.shutdown()
    server.server_close()


PACKAGES = ["nginx", "grafana=5.*", "spark-history=2.8.*,2.9.*", "kibana=2.4.*", "traefik"]
CHOICE = [*(argument for package in PACKAGES for argument in ("--package", package)), "--dcos-version", "1.10"]


@pytest.fixture(scope="module")
def tagged_images(docker_client):
    """The images the chosen versions name, hand-made and tagged in the test engine (nothing is pulled)."""
    rules = package_rules(PACKAGES)
    image = load_image(docker_client, "registry-test/mirror:1")
    for entry in chosen_versions(read_repository(str(UNIVERSE)), rules, (1, 10)):
        for reference in entry["resource"].get("assets", {}).get("container", {}).get("docker", {}).values():
            repository, _, tag = reference.rpartition(":")
            image.tag(repository, tag)
    return image


def asset_mirrors(entries: list[dict], asset_server, failing: str = "") -> list[str]:
    """``--asset-mirror`` arguments sending every download of the entries to the stand-in server (``failing``'s to a
    path it answers 404)."""
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for entry in entries
               for url in asset_urls(metadata_of(entry))}
    return [argument for origin in sorted(origins) for argument in (
        "--asset-mirror", f"{origin}={asset_server.base_url}/missing" if origin == failing else
        "=".join(asset_server.mirror_for(origin)))]


def mirror(*args) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "dcos_bundle.cli", "mirror", "--json", *map(str, args)],
                          cwd=PROJECT_DIR, env=os.environ, capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout)
    return done.returncode, result.get("error", {}).get("details", result)


def test_a_universe_repository_becomes_bundles_and_a_rerun_builds_only_what_is_missing(
        repository_url, tagged_images, asset_server, tmp_path, registry, client):
    output = tmp_path / "bundles"
    # Every download comes from the stand-in server, except traefik's binary from github.com: its version fails.
    chosen = chosen_versions(read_repository(str(UNIVERSE)), package_rules(PACKAGES), (1, 10))
    mirrors = asset_mirrors(chosen, asset_server, failing="https://github.com")
    status, report = mirror("--repository", repository_url, "--output-directory", output, "--jobs", 3,
                            *CHOICE, *mirrors)
    built = ["grafana 5.0.0-4.6.2", "kibana 2.4.0-5.6.9", "nginx 1.10.1", "nginx 1.8.1", "spark-history 2.8.0-2.4.0"]
    assert status == 1
    assert (report["built"], report["kept"]) == (built, []), report["failed"]
    traefik = sorted(entry["version"] for entry in chosen if entry["name"] == "traefik")
    assert [(failure["package"], failure["version"], failure["code"]) for failure in report["failed"]] == [
        ("traefik", version, "asset_unreachable") for version in traefik]
    assert report["chosen"] == len(chosen) == len(built) + len(traefik)

    # Each bundle holds its repository entry as metadata (of the latest release of a version), and reads back whole.
    entries = {(entry["name"], entry["version"]): entry for entry in read_repository(str(UNIVERSE))}
    for label in built:
        name, version = label.split(" ")
        with BundleReader(output / f"{name}-{version}.dcos") as reader:
            assert reader.metadata() == metadata_of(entries[name, version])
            reader.verify()
    assert entries["nginx", "1.8.1"]["releaseVersion"] == 1

    # A re-run keeps the valid bundles and rebuilds a damaged one.
    damaged = output / "nginx-1.10.1.dcos"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    status, report = mirror("--repository", repository_url, "--output-directory", output, *CHOICE, *mirrors)
    assert (status, report["built"], len(report["kept"])) == (1, ["nginx 1.10.1"], 4)

    # What mirror built, the registry takes in.
    response = client.post("/api/v1/bundles/", data=(output / "grafana-5.0.0-4.6.2.dcos").read_bytes(),
                           content_type=BUNDLE_MEDIA_TYPE)
    assert client.get(response["Location"]).json()["state"] == "succeeded"


def test_a_local_repository_file_and_its_refusals(tmp_path, asset_server):
    repository = UNIVERSE_DIR / "expected" / "repo-up-to-1.10.json.gz"
    mirrors = asset_mirrors(chosen_versions(read_repository(str(repository)), package_rules(["spark-history"]), None),
                            asset_server)
    status, report = mirror("--repository", repository, "--output-directory", tmp_path, "--package", "spark-history",
                            *mirrors)
    assert status == 0 and report["built"] == ["spark-history 2.1.0-2.2.0-1", "spark-history 2.4.0-2.2.1-3",
                                               "spark-history 2.6.0-2.3.2", "spark-history 2.8.0-2.4.0"]
    status, report = mirror("--repository", repository, "--output-directory", tmp_path, "--package", "spark-history",
                            *mirrors)
    assert (status, report["built"], len(report["kept"])) == (0, [], 4)

    (tmp_path / "not-a-repo.json").write_text("[]")
    done = subprocess.run([sys.executable, "-m", "dcos_bundle.cli", "mirror", "--repository",
                           str(tmp_path / "not-a-repo.json"), "--output-directory", str(tmp_path)],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("error [invalid_repository]: ")
    assert not list(Path(tmp_path).glob(".definitions/*"))
