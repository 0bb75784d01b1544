"""The `dcos-registry` client verbs, run as real processes against a live registry (ingest runs inline
in the server thread, or in a thread of its own as a worker's): chunked and resumed uploads, Ctrl-C at
every phase of `add`, failing bundles, a built package served by /repo, the catalogue and job verbs,
connection settings and refusals; a throttled chunk sent again, against a scripted server."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from importlib import metadata as distribution
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from django.db import connection
from rest_framework.pagination import PageNumberPagination

from access.tokens import create_token
from blobs.models import Blob
from dcos_bundle.client import STOP_AFTER_CHUNKS_VARIABLE, Connection, Registry, _SequentialHash
from dcos_bundle.sizes import human_size
from dcos_bundle.errors import RegistryError
from ingest import pipeline, services, tasks
from ingest.models import IngestJob, UploadSession
from ingest.views import IngestJobViewSet
from packages_app.models import Package, PackageVersion
from tests.actors import TEST_ACTOR
from tests.asset_server import content_for
from tests.bundles import AssetSpec, make_bundle
from tests.dcos_bundle.definitions import ORIGIN, write_definition
from tests.processes import PROJECT_DIR
from tests.streams import sha256_digest

pytestmark = pytest.mark.usefixtures("registry")

CHUNK = 64 * 1024


@pytest.fixture
def write_token(db) -> str:
    return create_token("cli", "write", actor=TEST_ACTOR)[1]


@pytest.fixture
def received_chunks(monkeypatch) -> list[tuple[int, int]]:
    """(start, end) of every chunk the registry accepted."""
    accepted, append_chunk = [], services.append_chunk

    def recording(session_id, stream, start, end, total):
        session = append_chunk(session_id, stream, start, end, total)
        accepted.append((start, end))
        return session

    monkeypatch.setattr(services, "append_chunk", recording)
    return accepted


class CommandLine:
    """`dcos-registry` run as a process with nothing of this machine's configuration; a call answers
    (status, out, err), and ``interrupt`` sends the running one SIGINT, as Ctrl-C does."""

    def __init__(self, environment: dict[str, str], secret: str):
        self.environment, self.secret, self.process = environment, secret, None

    def __call__(self, *args, **env) -> tuple[int, str, str]:
        environment = {key: value for key, value in {**self.environment, **env}.items() if value is not None}
        # As from a terminal, where Ctrl-C interrupts: a suite started in the background ignores SIGINT, and
        # its children would inherit that.
        self.process = subprocess.Popen([sys.executable, "-m", "dcos_bundle.cli", *map(str, args)], cwd=PROJECT_DIR,
                                        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            out, err = self.process.communicate(timeout=60)
        finally:
            self.process.kill()
        assert self.secret not in out + err
        return self.process.returncode, out, err

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)


@pytest.fixture
def cli(live_server, write_token, tmp_path) -> CommandLine:
    base = {key: value for key, value in os.environ.items()
            if not key.startswith("DCOS_REGISTRY_") and not key.startswith("XDG_")}
    base.update(HOME=str(tmp_path / "home"), DCOS_REGISTRY_STATE_DIR=str(tmp_path / "state"),
                DCOS_REGISTRY_URL=live_server.url, DCOS_REGISTRY_TOKEN=write_token)
    return CommandLine(base, write_token)


class Worker:
    """Ingest jobs run in threads of their own, apart from the request that queued them, as a Celery worker
    runs them; while held, a job waits in its inspect stage."""

    def __init__(self, run_ingest):
        self._run_ingest, self._open, self._threads = run_ingest, threading.Event(), []
        self._open.set()

    def delay(self, job_id: str) -> None:
        thread = threading.Thread(target=self._work, args=(job_id,))
        self._threads.append(thread)
        thread.start()

    def _work(self, job_id: str) -> None:
        try:
            self._run_ingest(job_id)
        finally:
            connection.close()

    def inspecting(self, inspect):
        def wait_then_inspect(*args, **kwargs):
            assert self._open.wait(timeout=60), "the held job was never released"
            return inspect(*args, **kwargs)

        return wait_then_inspect

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def finish(self) -> None:
        self.release()
        for thread in self._threads:
            thread.join(timeout=60)


@pytest.fixture
def worker(monkeypatch):
    worker = Worker(tasks.run_ingest)
    monkeypatch.setattr(pipeline, "inspect_bundle", worker.inspecting(pipeline.inspect_bundle))
    monkeypatch.setattr(tasks, "run_ingest", SimpleNamespace(delay=worker.delay))
    yield worker
    worker.finish()


def state_files(tmp_path) -> list:
    return list((tmp_path / "state").glob("*.json")) if (tmp_path / "state").exists() else []


def test_add_uploads_in_chunks_and_reports_the_package(cli, tmp_path, received_chunks):
    built = make_bundle(tmp_path / "b")
    size = built.path.stat().st_size
    status, out, err = cli("add", "--dcos-file", built.path, "--chunk-size", "64K")
    assert status == 0, err
    assert out == "Package [hello] version [1.0.0] added (release 0).\n"
    assert PackageVersion.objects.filter(package__name="hello", version="1.0.0").exists()
    session = UploadSession.objects.get()
    assert (session.state, session.size, session.file_name) == ("committed", size, "hello-1.0.0.dcos")
    assert received_chunks == [(start, min(start + CHUNK, size) - 1) for start in range(0, size, CHUNK)]
    assert state_files(tmp_path) == []

    status, out, err = cli("add", "--dcos-file", built.path)
    assert status == 0, err
    assert out == ("Package [hello] version [1.0.0] is already in the registry with the same content (release 0); "
                   "nothing changed.\n")
    assert PackageVersion.objects.get(version="1.0.0").release_version == 0

    second = make_bundle(tmp_path / "c", version="2.0.0")
    status, out, err = cli("add", "--dcos-file", second.path, "--json")
    assert status == 0, err
    job = json.loads(out)["job"]
    assert (job["state"], job["outcome"]) == ("succeeded", "published")
    assert job["result"] == {"package": "hello", "version": "2.0.0", "release_version": 1}

    third = make_bundle(tmp_path / "d", version="3.0.0")
    status, out, err = cli("add", "--dcos-file", third.path, "--no-wait")
    job = IngestJob.objects.get(version="3.0.0")
    assert status == 0 and out.strip().endswith(f"/api/v1/jobs/{job.pk}/"), (out, err)
    # Not followed to its end, the job is what the same command follows next time, without uploading again.
    assert len(state_files(tmp_path)) == 1
    status, out, err = cli("add", "--dcos-file", third.path)
    assert (status, out) == (0, "Package [hello] version [3.0.0] added (release 2).\n"), err
    assert IngestJob.objects.filter(version="3.0.0").count() == 1 and UploadSession.objects.count() == 4
    assert state_files(tmp_path) == []


def test_an_interrupted_upload_is_resumed_where_the_registry_stopped(cli, tmp_path, received_chunks):
    built = make_bundle(tmp_path / "b")
    size = built.path.stat().st_size
    status, _, _ = cli("add", "--dcos-file", built.path, "--chunk-size", "64K", **{STOP_AFTER_CHUNKS_VARIABLE: "2"})
    assert status == -signal.SIGKILL
    session = UploadSession.objects.get()
    assert (session.state, session.offset) == ("open", 2 * CHUNK)
    assert len(state_files(tmp_path)) == 1
    assert not PackageVersion.objects.exists()

    status, out, err = cli("add", "--dcos-file", built.path, "--chunk-size", "64K")
    assert status == 0, err
    assert "version [1.0.0] added" in out
    session.refresh_from_db()
    assert session.state == "committed" and UploadSession.objects.count() == 1
    # Every byte reached the registry once: the second run began at the offset the first one reached.
    assert received_chunks == [(start, min(start + CHUNK, size) - 1) for start in range(0, size, CHUNK)]
    assert state_files(tmp_path) == []


INTERRUPTED_PHASES = ["sending chunks", "awaiting the commit's answer", "after the commit", "following the stages"]


@pytest.mark.parametrize("phase", INTERRUPTED_PHASES)
def test_ctrl_c_at_any_phase_of_add_is_taken_up_by_the_same_command(phase, cli, tmp_path, received_chunks, worker,
                                                                      monkeypatch):
    """Ctrl-C, as the registry reaches each phase: the re-run sends only the missing bytes or follows the
    committed upload's job, so there is one upload and one job."""
    built = make_bundle(tmp_path / "b")
    size = built.path.stat().st_size
    interrupted = threading.Event()

    def interrupt_once():
        if not interrupted.is_set():
            interrupted.set()
            cli.interrupt()

    def after(function, condition=lambda result: True):
        def then_interrupt(*args, **kwargs):
            result = function(*args, **kwargs)
            if condition(result):
                interrupt_once()
            return result

        return then_interrupt

    if phase == "sending chunks":
        monkeypatch.setattr(services, "append_chunk", after(services.append_chunk, lambda session: session.offset
                                                            == 2 * CHUNK))
    elif phase == "awaiting the commit's answer":
        monkeypatch.setattr(services, "commit_upload", after(services.commit_upload))
    elif phase == "after the commit":
        monkeypatch.setattr(IngestJobViewSet, "retrieve", after(IngestJobViewSet.retrieve))
    else:
        worker.hold()
        monkeypatch.setattr(IngestJobViewSet, "retrieve", after(
            IngestJobViewSet.retrieve, lambda answer: (answer.data["state"], answer.data["stage"]) == ("running",
                                                                                                     "inspect")))

    status, out, err = cli("add", "--dcos-file", built.path, "--chunk-size", "64K")
    assert (status, out) == (130, ""), err
    assert err.endswith("interrupted; run the same command again: it sends only what the registry lacks, or follows "
                        "the job of an upload already committed\n")
    assert interrupted.is_set() and len(state_files(tmp_path)) == 1
    worker.release()

    status, out, err = cli("add", "--dcos-file", built.path, "--chunk-size", "64K")
    assert (status, out) == (0, "Package [hello] version [1.0.0] added (release 0).\n"), err
    assert UploadSession.objects.count() == 1 and IngestJob.objects.count() == 1
    assert received_chunks == [(start, min(start + CHUNK, size) - 1) for start in range(0, size, CHUNK)]
    assert state_files(tmp_path) == []


def test_an_upload_the_registry_forgot_starts_afresh(cli, tmp_path):
    built = make_bundle(tmp_path / "b")
    cli("add", "--dcos-file", built.path, "--chunk-size", "64K", **{STOP_AFTER_CHUNKS_VARIABLE: "1"})
    forgotten = UploadSession.objects.get()
    forgotten.delete()  # as the garbage collector does with an abandoned upload

    status, out, err = cli("add", "--dcos-file", built.path, "--chunk-size", "64K")
    assert status == 0, err
    assert UploadSession.objects.get().pk != forgotten.pk
    assert PackageVersion.objects.filter(version="1.0.0").exists()


COSMOS_ACCEPT = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5"


def test_resource_values_that_are_no_urls_are_built_and_served_as_they_are(cli, tmp_path, asset_server, live_server):
    # Real Universe revisions leave a URI empty for their Marathon template to fill from an option.
    payload = ORIGIN + "hello/payload.tgz"
    uris = {"payload": payload, "from-option": "", "on-hdfs": "hdfs://namenode/libs/plugin.jar"}
    definition = write_definition(tmp_path / "def", uris=uris)
    status, out, err = cli("build", "--build-definition-file", definition, "--output-directory", tmp_path / "out",
                           "--asset-mirror", "=".join(asset_server.mirror_for(ORIGIN)))
    assert status == 0, err
    assert out.splitlines()[1:] == [
        '  kept as it is, not an http, https or file URL: /resource/assets/uris/from-option = ""',
        '  kept as it is, not an http, https or file URL: /resource/assets/uris/on-hdfs = '
        '"hdfs://namenode/libs/plugin.jar"',
    ]
    assert asset_server.requests == ["/downloads.example.invalid/hello/payload.tgz"]

    status, out, err = cli("add", "--dcos-file", tmp_path / "out" / "hello-1.0.0.dcos")
    assert (status, out) == (0, "Package [hello] version [1.0.0] added (release 0).\n"), err
    repo = requests.get(live_server.url + "/repo", headers={"Accept": COSMOS_ACCEPT}, timeout=10)
    [package] = repo.json()["packages"]
    served = package["resource"]["assets"]["uris"]
    assert (served["from-option"], served["on-hdfs"]) == ("", "hdfs://namenode/libs/plugin.jar")
    assert "/resource/" in served["payload"]
    download = requests.get(live_server.url + urlsplit(served["payload"]).path, timeout=10)
    assert download.status_code == 200
    assert download.content == content_for("/downloads.example.invalid/hello/payload.tgz")


def test_a_failing_bundle_exits_with_the_registrys_error(cli, tmp_path):
    first = make_bundle(tmp_path / "a")
    other = make_bundle(tmp_path / "b", assets=[AssetSpec("payload", "payload.tgz", 1000, 99)])
    assert cli("add", "--dcos-file", first.path)[0] == 0

    status, out, err = cli("add", "--dcos-file", other.path)
    assert status == 1 and out == ""
    assert err.startswith("error [version_conflict]: ")
    status, out, _ = cli("add", "--dcos-file", other.path, "--json")
    assert status == 1
    assert json.loads(out)["error"]["code"] == "version_conflict"

    status, out, err = cli("add", "--dcos-file", other.path, "--replace")
    assert status == 0, err
    assert out == "Package [hello] version [1.0.0] replaced (release 1).\n"
    replaced = PackageVersion.objects.get(version="1.0.0")
    assert replaced.bundle_digest == IngestJob.objects.latest("created_at").bundle_digest


def test_describe_list_search_jobs_and_remove(cli, tmp_path, monkeypatch, live_server):
    # One package a page, so that every list needs pagination followed.
    monkeypatch.setattr(PageNumberPagination, "page_size", 1)
    assert cli("add", "--dcos-file", make_bundle(tmp_path / "hello").path)[0] == 0
    other = make_bundle(tmp_path / "other", name="other", assets=[AssetSpec("payload", "payload.tgz", 1000, 7)])
    assert cli("add", "--dcos-file", other.path)[0] == 0

    status, out, _ = cli("describe", "--package-name", "hello", "--package-version", "1.0.0", "--json")
    version = json.loads(out)
    assert status == 0 and (version["name"], version["version"]) == ("hello", "1.0.0")
    status, out, _ = cli("describe", "--package-name", "hello", "--package-version", "1.0.0")
    assert status == 0 and out.startswith("hello 1.0.0 (release 0")
    assert "  image example/hello:1.0.0: docker pull " in out
    # Each asset's original URL, and the registry's copy that /repo points clusters at.
    [asset] = version["assets"]
    assert f"  asset {asset['url']} ({asset['size']} bytes)\n    served as {asset['download_url']}\n" in out
    served = requests.get(live_server.url + urlsplit(asset["download_url"]).path, timeout=10)
    assert (served.status_code, len(served.content)) == (200, asset["size"])
    status, out, err = cli("describe", "--package-name", "hello", "--package-version", "9.9")
    assert (status, out) == (1, "")
    assert err == "error [version_not_found]: Version [9.9] of package [hello] not found\n"

    status, out, _ = cli("list", "--json")
    assert status == 0 and [package["name"] for package in json.loads(out)] == ["hello", "other"]
    status, out, _ = cli("search", "other", "--json")
    assert [package["name"] for package in json.loads(out)] == ["other"]
    # Several words: each must match, in the name, the description or the tags.
    status, out, err = cli("search", "TEST", "package", "--json")
    assert status == 0 and [package["name"] for package in json.loads(out)] == ["hello", "other"], err
    status, out, _ = cli("search", "test", "other", "--json")
    assert [package["name"] for package in json.loads(out)] == ["other"]
    assert cli("list", "hello", "other")[1] == "No packages.\n"
    status, out, _ = cli("list", "nothing-like-it")
    assert (status, out) == (0, "No packages.\n")
    status, out, _ = cli("list")
    assert out.splitlines()[0].split() == ["NAME", "VERSION", "VERSIONS", "DESCRIPTION"] and len(out.splitlines()) == 3

    status, out, _ = cli("jobs", "--json", "--state", "succeeded")
    assert status == 0 and sorted(job["package_name"] for job in json.loads(out)) == ["hello", "other"]
    status, out, _ = cli("jobs", "--json", "--package", "other")
    assert [job["package_name"] for job in json.loads(out)] == ["other"]
    assert json.loads(cli("jobs", "--json", "--state", "failed")[1]) == []

    status, out, _ = cli("remove", "--package-name", "hello", "--package-version", "1.0.0", "--json")
    removed = json.loads(out)
    assert status == 0 and (removed["package"], removed["version"]) == ("hello", "1.0.0")
    assert removed["garbage_blobs"] and all(digest.startswith("sha256:") for digest in removed["garbage_blobs"])
    assert removed["garbage_bytes"] == sum(Blob.objects.filter(digest__in=removed["garbage_blobs"]).values_list(
        "size", flat=True)) > 0
    assert not PackageVersion.objects.filter(package__name="hello").exists()
    status, _, err = cli("remove", "--package-name", "hello", "--package-version", "1.0.0")
    # Its only version gone, the package is no more either.
    assert (status, err) == (1, "error [package_not_found]: Package [hello] not found\n")
    garbage = Blob.objects.filter(references__version__package__name="other").distinct()
    count, size = garbage.count(), sum(blob.size for blob in garbage)
    status, out, _ = cli("remove", "--package-name", "other", "--package-version", "1.0.0")
    assert (status, out) == (0, f"Removed version [1.0.0] of package [other]; {count} blobs ({human_size(size)}) are "
                                "left for the garbage collector.\n")


def test_version_is_the_installed_distributions(cli):
    assert cli("--version") == (0, f"dcos-registry {distribution.version('dcos-package-registry')}\n", "")


def test_set_default_pins_and_unpins_the_version_cosmos_installs(cli, tmp_path):
    for version, seed in (("16.2", 1), ("2.0", 2)):
        built = make_bundle(tmp_path / version, version=version, assets=[AssetSpec("payload", "p.tgz", 1000, seed)])
        assert cli("add", "--dcos-file", built.path)[0] == 0

    status, out, err = cli("set-default", "--package-name", "hello", "--package-version", "2.0")
    assert (status, out) == (0, "Package [hello] defaults to version [2.0] (pinned).\n"), err
    assert Package.objects.get().pinned_version == "2.0"
    status, out, _ = cli("set-default", "--package-name", "hello", "--unset", "--json")
    assert status == 0 and json.loads(out) == {"name": "hello", "url": json.loads(out)["url"],
                                               "default_version": "16.2", "pinned_version": None}
    status, out, _ = cli("set-default", "--package-name", "hello", "--unset")
    assert out == "Package [hello] has no pinned version: it defaults to its highest version [16.2].\n"

    status, out, err = cli("set-default", "--package-name", "hello", "--package-version", "9.9")
    assert (status, out, err) == (1, "", "error [version_not_found]: Version [9.9] of package [hello] not found\n")
    status, out, _ = cli("set-default", "--package-name", "nope", "--package-version", "1.0", "--json")
    assert status == 1 and json.loads(out)["error"]["code"] == "package_not_found"
    # One of a version and --unset, not both, not neither.
    assert cli("set-default", "--package-name", "hello")[0] == 2
    assert cli("set-default", "--package-name", "hello", "--package-version", "2.0", "--unset")[0] == 2
    assert Package.objects.get().pinned_version == ""


def test_connection_settings_and_refusals(cli, tmp_path, live_server, write_token, settings):
    status, out, err = cli("list", DCOS_REGISTRY_URL=None)
    assert status == 1 and out == ""
    assert err.startswith("error [registry_not_configured]: No registry to talk to: give --registry URL")

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"registry": live_server.url, "token": write_token}))
    assert cli("list", "--json", DCOS_REGISTRY_URL=None, DCOS_REGISTRY_CONFIG=str(config)) == (0, "[]\n", "")
    assert cli("list", "--json", "--registry", live_server.url, DCOS_REGISTRY_URL="http://127.0.0.1:9")[0] == 0

    status, out, err = cli("remove", "--package-name", "hello", "--package-version", "1.0.0",
                           DCOS_REGISTRY_TOKEN="dcr_unknown_secret")
    assert status == 1 and err.startswith("error [invalid_token]: ")
    read_token = create_token("reader", "read", actor=TEST_ACTOR)[1]
    built = make_bundle(tmp_path / "b")
    status, out, err = cli("add", "--dcos-file", built.path, "--json", "--token", read_token)
    assert status == 1 and json.loads(out)["error"]["code"] == "permission_denied"
    assert not UploadSession.objects.exists()
    # Without a token: where to give one, in this command's terms.
    status, _, err = cli("add", "--dcos-file", built.path, DCOS_REGISTRY_TOKEN=None)
    assert (status, err) == (1, "error [not_authenticated]: This needs an API token, and none was given: give --token "
                                "TOKEN, set DCOS_REGISTRY_TOKEN, or write {\"token\": TOKEN} into "
                                f"{tmp_path}/home/.config/dcos-registry/config.json.\n")
    settings.ANONYMOUS_READS = False
    status, out, _ = cli("list", "--json", DCOS_REGISTRY_TOKEN=None, DCOS_REGISTRY_CONFIG=str(tmp_path / "other.json"))
    refusal = json.loads(out)["error"]
    assert status == 1 and refusal["code"] == "not_authenticated"
    assert refusal["message"].endswith(f"into {tmp_path}/other.json.")
    assert refusal["details"]["config"] == str(tmp_path / "other.json")


class ScriptedRegistry(http.server.BaseHTTPRequestHandler):
    """Answers PUTs from a script of (status, headers, body) and records the bodies it received."""

    script: list[tuple[int, dict, bytes]] = []
    bodies: list[bytes] = []

    def do_PUT(self):
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        status, headers, body = self.script.pop(0)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_registry():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ScriptedRegistry.bodies = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_throttled_chunk_is_sent_again_after_retry_after_and_a_proxys_refusal_is_named(scripted_registry, tmp_path):
    bundle = tmp_path / "x.dcos"
    bundle.write_bytes(b"0123456789")
    throttled = json.dumps({"code": "throttled", "message": "Slow down.", "details": {}}).encode()
    ScriptedRegistry.script = [(429, {"Retry-After": "0"}, throttled), (200, {}, b'{"offset": 6}'),
                               (413, {"Content-Type": "text/html"}, b"<html>413 Request Entity Too Large</html>")]
    registry = Registry(Connection(scripted_registry, "dcr_x_y"))
    with open(bundle, "rb") as file:
        assert registry.put_chunk("s", file, 2, 4, 10, lambda position, data: None) == 6
        with pytest.raises(RegistryError) as refused:
            registry.put_chunk("s", file, 6, 4, 10, lambda position, data: None)
    assert ScriptedRegistry.bodies == [b"2345", b"2345", b"6789"]
    assert refused.value.code == "http_413"
    assert refused.value.message == f"PUT {scripted_registry}/api/v1/uploads/s/ answered 413 Request Entity Too Large."


def test_a_chunk_the_registry_could_not_take_for_an_outage_is_sent_again(scripted_registry, tmp_path):
    bundle = tmp_path / "x.dcos"
    bundle.write_bytes(b"0123456789")
    outage = json.dumps({"code": "service_unavailable", "message": "Away.", "details": {}}).encode()
    # A 503 without Retry-After is no promise that it passes (a proxy's): it ends the command.
    ScriptedRegistry.script = [(503, {"Retry-After": "0"}, outage), (200, {}, b'{"offset": 6}'), (503, {}, outage)]
    registry = Registry(Connection(scripted_registry, "dcr_x_y"))
    with open(bundle, "rb") as file:
        assert registry.put_chunk("s", file, 2, 4, 10, lambda position, data: None) == 6
        with pytest.raises(RegistryError) as refused:
            registry.put_chunk("s", file, 6, 4, 10, lambda position, data: None)
    assert ScriptedRegistry.bodies == [b"2345", b"2345", b"6789"]
    assert (refused.value.code, refused.value.status) == ("service_unavailable", 503)


def test_the_upload_hash_takes_each_byte_once_whatever_order_pieces_come_in(tmp_path):
    content = bytes(range(256)) * 40
    path = tmp_path / "bundle.dcos"
    path.write_bytes(content)
    with open(path, "rb") as rereads:
        hashed = _SequentialHash(rereads)
        hashed.catch_up(1000)  # sent before an interruption
        hashed.update_at(1000, content[1000:3000])
        hashed.update_at(1000, content[1000:3000])  # a resent chunk
        hashed.update_at(2500, content[2500:4000])  # overlapping what was hashed
        hashed.update_at(6000, content[6000:7000])  # after a gap: read again at the end
        assert hashed.digest(len(content)) == sha256_digest(content)
