"""A file that is no ZIP is refused by its first bytes, before the rest of it is read: monolithic (raw body and
multipart form) and resumable uploads (the first chunk), with nothing staged, no job, no session left open."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import IngestJob, UploadSession
from tests.bundles import make_bundle
from tests.processes import PROJECT_DIR, free_port, get_json, manage, registry_env, stop, wait_until

MiB = 1024 * 1024
BIG = 50 * MiB
# What a client sends before it waits for an answer: far less than the whole upload.
SENT_FIRST = MiB
NOT_A_ZIP = b"<!DOCTYPE html>\n<html><body>a download page, not a bundle</body></html>\n"
BOUNDARY = "----bundle-boundary"


def staged_files(settings) -> list:
    return [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()]


def not_a_zip(size: int) -> bytes:
    return (NOT_A_ZIP * (size // len(NOT_A_ZIP) + 1))[:size]


def form(file_bytes: bytes, total_file_size: int) -> tuple[bytes, bytes, int]:
    """A multipart form around the file: its head (up to and with ``file_bytes``), tail and whole length."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"x.dcos\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + file_bytes
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head, tail, len(head) - len(file_bytes) + total_file_size + len(tail)


@pytest.mark.usefixtures("registry")
class TestThroughTheApi:
    def test_a_raw_upload_that_is_no_zip_is_refused_with_nothing_kept(self, client, settings):
        response = client.post("/api/v1/bundles/", data=not_a_zip(100_000), content_type=BUNDLE_MEDIA_TYPE)
        assert response.status_code == 400
        error = response.json()
        assert error["code"] == "not_a_zip" and error["details"] == {"first_bytes": NOT_A_ZIP[:4].hex()}
        assert error["message"].startswith("The upload is not a ZIP archive: it starts with the bytes 3c 21 44 4f")
        assert IngestJob.objects.count() == 0 and staged_files(settings) == []

    def test_a_multipart_upload_that_is_no_zip_is_refused_with_nothing_kept(self, client, settings):
        head, tail, _ = form(not_a_zip(100_000), 100_000)
        response = client.post("/api/v1/bundles/", data=head + tail,
                               content_type=f"multipart/form-data; boundary={BOUNDARY}")
        assert (response.status_code, response.json()["code"]) == (400, "not_a_zip")
        assert IngestJob.objects.count() == 0 and staged_files(settings) == []

    def test_an_empty_zip_archive_is_refused_at_once(self, client, settings):
        response = client.post("/api/v1/bundles/", data=b"PK\x05\x06" + b"\0" * 18, content_type=BUNDLE_MEDIA_TYPE)
        assert (response.status_code, response.json()["code"]) == (400, "empty_bundle")
        assert IngestJob.objects.count() == 0 and staged_files(settings) == []

    def test_a_resumable_upload_whose_first_chunk_is_no_zip_is_cancelled(self, client, settings):
        session = client.post("/api/v1/uploads/", {"size": 100_000}, content_type="application/json").json()
        response = client.put(session["url"], data=not_a_zip(50_000), content_type="application/octet-stream",
                              headers={"Content-Range": "bytes 0-49999/100000"})
        assert response.status_code == 400
        error = response.json()
        assert error["code"] == "not_a_zip" and error["message"].endswith(f"Upload {session['id']} is cancelled.")
        assert error["details"] == {"first_bytes": "3c21444f", "upload": session["id"]}
        assert UploadSession.objects.get().state == "cancelled"
        assert IngestJob.objects.count() == 0 and staged_files(settings) == []

    def test_first_bytes_split_over_tiny_chunks_are_judged_together(self, client, settings, tmp_path):
        built = make_bundle(tmp_path / "b").path.read_bytes()
        for data, first_chunk_sizes, refused in ((built, [1, 2], None),
                                                 (b"PK\x05\x06" + built[4:], [2, 2], "empty_bundle"),
                                                 (b"PK\x03\x05" + built[4:], [3, 1], "not_a_zip")):
            session = client.post("/api/v1/uploads/", {"size": len(data)}, content_type="application/json").json()
            ends = [*itertools.accumulate(first_chunk_sizes), len(data)]
            for start, end in zip([0, *ends], ends):
                response = client.put(session["url"], data=data[start:end], content_type="application/octet-stream",
                                      headers={"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"})
                if response.status_code != 200:
                    break
            if refused is None:
                assert (response.status_code, response.json()["offset"]) == (200, len(data))
                assert client.post(session["url"] + "commit/", {}, content_type="application/json").status_code == 202
            else:
                # Refused by the chunk that completed the first four bytes.
                assert (response.status_code, response.json()["code"], end) == (400, refused, 4)
                assert UploadSession.objects.get(pk=session["id"]).state == "cancelled"
        assert [job.state for job in IngestJob.objects.all()] == ["succeeded"]
        assert staged_files(settings) == []


def send_partly(port: int, request_head: str, first: bytes) -> tuple[int, dict]:
    """Send the request line, headers and only ``first`` of the body; read the answer the server gives then."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request_head.encode() + first)
        answer = b""
        while b"\r\n\r\n" not in answer:
            received = connection.recv(65536)
            assert received, f"the server closed the connection without an answer: {answer!r}"
            answer += received
        head, body = answer.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += connection.recv(65536)
    return int(head.split()[1]), json.loads(body)


def request_head(method: str, path: str, token: str, length: int, content_type: str, **headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}",
             f"Content-Type: {content_type}", f"Content-Length: {length}",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


@pytest.fixture
def web_server(tmp_path):
    """The production web server (gunicorn, gthread, the registry's config) on embedded defaults, and a token."""
    env = registry_env(tmp_path / "data", DISK_FREE_THRESHOLD_BYTES="1")
    manage("migrate", "--no-input", env=env)
    token = manage("tokens", "create", "--name", "uploader", "--scope", "write", env=env).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "registry_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--threads", "4", "--config", "python:registry_site.gunicorn_conf"],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: get_json(f"http://127.0.0.1:{port}/health")[0] == 200, timeout=60, what="gunicorn")
        yield {"port": port, "token": token, "env": env, "staging": tmp_path / "data" / "staging"}
    finally:
        stop(server)


def left_behind(web_server) -> tuple[list, str]:
    files = [path for path in web_server["staging"].rglob("*") if path.is_file()]
    counts = manage("shell", "--verbosity", "0", "-c",
                    "from ingest.models import IngestJob, UploadSession; "
                    "print(IngestJob.objects.count(), list(UploadSession.objects.values_list('state', flat=True)))",
                    env=web_server["env"]).stdout.strip()
    return files, counts


@pytest.mark.slow
def test_a_50_mb_upload_that_is_no_zip_is_answered_before_its_body_is_sent(web_server):
    """Each way of uploading 50 MB that is no ZIP gets its 400 after 1 MiB was sent: the server read the first
    bytes, answered, and waited for nothing more. Nothing is staged, no job exists, the session is cancelled."""
    port, token = web_server["port"], web_server["token"]
    first = not_a_zip(SENT_FIRST)

    status, error = send_partly(port, request_head("POST", "/api/v1/bundles/", token, BIG, BUNDLE_MEDIA_TYPE), first)
    assert (status, error["code"]) == (400, "not_a_zip")

    head, _, length = form(first, BIG)
    status, error = send_partly(port, request_head(
        "POST", "/api/v1/bundles/", token, length, f"multipart/form-data; boundary={BOUNDARY}"), head)
    assert (status, error["code"]) == (400, "not_a_zip")

    # Opened by the same token: an upload session belongs to the caller that opened it.
    opened = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/uploads/", data=json.dumps({"size": BIG}).encode(),
                                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(opened, timeout=30) as answer:
        session = json.load(answer)["id"]
    status, error = send_partly(port, request_head(
        "PUT", f"/api/v1/uploads/{session}/", token, BIG, "application/octet-stream",
        Content_Range=f"bytes 0-{BIG - 1}/{BIG}"), first)
    assert (status, error["code"]) == (400, "not_a_zip")

    assert left_behind(web_server) == ([], "0 ['cancelled']")


def test_a_bundle_still_goes_through_every_way(client, tmp_path, registry, settings):
    """The first-bytes check lets real bundles through: raw, multipart and resumable."""
    built = make_bundle(tmp_path / "b")
    data = built.path.read_bytes()
    assert client.post("/api/v1/bundles/", data=data, content_type=BUNDLE_MEDIA_TYPE).status_code == 202
    with open(built.path, "rb") as bundle:
        assert client.post("/api/v1/bundles/", data={"bundle": bundle}).status_code == 202
    session = client.post("/api/v1/uploads/", {"size": len(data)}, content_type="application/json").json()
    assert client.put(session["url"], data=data, content_type="application/octet-stream",
                      headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}).status_code == 200
    assert client.post(session["url"] + "commit/", {}, content_type="application/json").status_code == 202
    assert [job.state for job in IngestJob.objects.all()] == ["succeeded"] * 3
    assert os.listdir(settings.STAGING_DIR / "bundles") == []
