"""Malformed upload requests get a 4xx with their code, never a 500, and leave no job or staged byte behind:
numbers of thousands of digits in Content-Range and Content-Length, chunks without a length, file names
longer than their column or holding control characters, ids that are no UUID."""

from __future__ import annotations

import pytest
from django.conf import settings

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import IngestJob, UploadSession

pytestmark = pytest.mark.usefixtures("registry")
THOUSANDS_OF_DIGITS = "9" * 5000


def staged() -> list:
    return [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()]


@pytest.fixture
def session(client) -> dict:
    return client.post("/api/v1/uploads/", data={"size": 10}, content_type="application/json").json()


def put_chunk(client, session: dict, data: bytes = b"0123456789", **meta):
    return client.put(session["url"], data=data, content_type="application/octet-stream", **meta)


def error(response, status: int, code: str) -> dict:
    assert (response.status_code, response.json()["code"]) == (status, code), response.content[:300]
    return response.json()


@pytest.mark.parametrize("header", [
    f"bytes 0-{THOUSANDS_OF_DIGITS}/10", f"bytes {THOUSANDS_OF_DIGITS}-9/10", f"bytes 0-9/{THOUSANDS_OF_DIGITS}",
    "bytes 0-9/10\n", "bytes ٠-٩/10",
])
def test_a_content_range_of_thousands_of_digits_or_other_digits_is_invalid(client, session, header):
    message = error(put_chunk(client, session, HTTP_CONTENT_RANGE=header), 400, "range_invalid")["message"]
    assert len(message) < 300
    assert UploadSession.objects.get(pk=session["id"]).offset == 0


@pytest.mark.parametrize("length", [THOUSANDS_OF_DIGITS, "²", "-1", "1e3"])
def test_a_content_length_that_is_no_number_of_bytes_is_invalid(client, session, length):
    error(put_chunk(client, session, HTTP_CONTENT_RANGE="bytes 0-9/10", CONTENT_LENGTH=length), 400, "invalid_request")
    response = client.post("/api/v1/bundles/", data=b"PK\x03\x04", content_type=BUNDLE_MEDIA_TYPE, CONTENT_LENGTH=length)
    error(response, 400, "invalid_request")
    assert not IngestJob.objects.exists() and not staged()


def test_a_chunk_without_content_length_is_refused_with_411(client, session):
    # What a chunked request body looks like to Django: no CONTENT_LENGTH, and an empty stream.
    response = put_chunk(client, session, HTTP_CONTENT_RANGE="bytes 0-9/10", HTTP_TRANSFER_ENCODING="chunked",
                         CONTENT_LENGTH="")
    assert "Content-Length" in error(response, 411, "length_required")["message"]
    assert UploadSession.objects.get(pk=session["id"]).offset == 0


@pytest.mark.parametrize("name", ["b" * 256 + ".dcos", "a\0b.dcos", "line\nbreak.dcos", "tab\t.dcos"])
def test_file_names_the_registry_cannot_keep_are_refused_before_the_body_is_read(client, name):
    response = client.post("/api/v1/bundles/", data=b"PK\x03\x04" + b"x" * 100, content_type=BUNDLE_MEDIA_TYPE,
                           headers={"X-File-Name": name})
    assert error(response, 400, "invalid_request")["details"] == {"field": "file_name", "limit": 255}
    # In the query string, a NUL is refused before any view.
    response = client.post("/api/v1/bundles/", data=b"PK\x03\x04" + b"x" * 100, content_type=BUNDLE_MEDIA_TYPE,
                           query_params={"file_name": name})
    error(response, 400, "invalid_request")
    response = client.post("/api/v1/uploads/", data={"size": 10, "file_name": name}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not IngestJob.objects.exists() and not UploadSession.objects.exists() and not staged()


def test_a_file_name_of_255_characters_is_kept(client, tmp_path):
    name = "n" * 250 + ".dcos"
    response = client.post("/api/v1/bundles/", data=b"PK\x03\x04" + b"x" * 100, content_type=BUNDLE_MEDIA_TYPE,
                           query_params={"file_name": name})
    assert response.status_code == 202 and response.json()["bundle_name"] == name


@pytest.mark.parametrize("method, suffix, data, content_type", [
    ("PUT", "", b"0123456789", "application/octet-stream"), ("DELETE", "", b"", "application/json"),
    ("POST", "commit/", b"{}", "application/json"), ("GET", "", b"", "application/json"),
])
def test_an_upload_id_that_is_no_uuid_is_unknown(client, method, suffix, data, content_type):
    response = client.generic(method, f"/api/v1/uploads/not-a-uuid/{suffix}", data=data, content_type=content_type,
                              HTTP_CONTENT_RANGE="bytes 0-9/10")
    assert response.status_code == 404, response.content


def test_a_job_id_that_is_no_uuid_is_unknown(client):
    error(client.post("/api/v1/jobs/not-a-uuid/cancel/"), 404, "job_not_found")
    error(client.get("/api/v1/jobs/not-a-uuid/"), 404, "job_not_found")
