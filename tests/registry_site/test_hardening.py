"""What a production registry owes its clients: bounded bodies, strict headers, no stack traces, safe headers,
and the cluster a request was made for in its metrics and log line."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from access.models import Cluster
from access.tokens import create_token
from packages_app import catalogue_api
from telemetry import metrics
from tests.actors import TEST_ACTOR

pytestmark = pytest.mark.usefixtures("registry")


def test_json_bodies_are_bounded(client, settings):
    settings.API_MAX_JSON_BYTES = 1000
    big = json.dumps({"name": "x", "description": "d" * 2000})
    response = client.post("/api/v1/clusters/", data=big, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert "1000 bytes" in response.json()["message"]
    assert client.post("/api/v1/clusters/", data={"name": "x"}, content_type="application/json").status_code == 201


@pytest.mark.parametrize("header", ["bytes 0-9/*", "bytes=0-9/10", "bytes 0-9/10, 10-19/20", "bytes -1-9/10",
                                    "bytes 0x0-9/10", ""])
def test_content_range_is_parsed_strictly(client, header):
    session = client.post("/api/v1/uploads/", data={"size": 10}, content_type="application/json").json()
    response = client.put(session["url"], data=b"0123456789", content_type="application/octet-stream",
                          HTTP_CONTENT_RANGE=header)
    assert response.status_code == 400 and response.json()["code"] == "range_invalid"


def test_a_failure_answers_a_sentence_not_a_stack_trace(settings, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(catalogue_api, "package_summaries", broken)
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/packages/")
    assert response.status_code == 500
    assert response.json() == {"code": "server_error", "details": {},
                               "message": "The registry failed to answer this request; the error is in its log."}
    assert b"secret internals" not in response.content and b"Traceback" not in response.content


def test_security_headers_and_cookies(client, admin_client, settings):
    response = client.get("/api/v1/packages/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    login = Client().get("/admin/login/")
    assert login.cookies["csrftoken"]["samesite"] == "Lax"
    assert not settings.DEBUG


def test_metrics_and_logs_name_the_cluster_a_request_was_made_for(client, caplog):
    client.post("/api/v1/clusters/", data={"name": "edge"}, content_type="application/json")
    token = create_token("edge reader", "read", Cluster.objects.get(name="edge"), actor=TEST_ACTOR)[1]

    def count(cluster):
        return metrics.HTTP_REQUESTS.labels("GET", "repo", "200", cluster)._value.get()

    before = count("edge")
    with caplog.at_level(logging.INFO, logger="registry_site.requests"):
        assert Client(headers={"Authorization": f"Bearer {token}"}).get("/repo").status_code == 200
        assert Client().get("/clusters/edge/repo").status_code == 200
    assert count("edge") == before + 1
    assert metrics.HTTP_REQUESTS.labels("GET", "clusters/<name>/repo", "200", "edge")._value.get() >= 1
    lines = [record.msg for record in caplog.records if isinstance(record.msg, dict)]
    assert [line.get("cluster") for line in lines if line.get("event") == "request"][-2:] == ["edge", "edge"]


@pytest.mark.parametrize("path", [
    "/api/v1/packages/?search=a%00b", "/api/v1/packages/?tag=%00", "/api/v1/packages/?packaging_version=4%000",
    "/api/v1/packages/a%00b/", "/api/v1/packages/hello/versions/1%00/", "/api/v1/jobs/?state=failed%00",
    "/api/v1/jobs/?package=%00", "/api/v1/jobs/?error_code=x%00", "/api/v1/tokens/abc%00/", "/api/v1/clusters/?x%00=1",
    "/repo?cluster=%00", "/v2/a%00b/tags/list", "/resource/x%00/sha256:0/f", "/admin/?q=%00",
])
def test_a_nul_in_a_path_or_query_is_refused_before_any_view(client, operator_token, path):
    # PostgreSQL text cannot hold NUL: a query naming one would fail in the database.
    response = client.get(path, headers={"Authorization": f"Bearer {operator_token}"})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_request" and "NUL" in response.json()["message"]


@pytest.mark.parametrize("body, code", [
    (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
    (b'{"name": "x", "description": "' + b"d" * 10 + b'", "n": 1' + b"0" * 5000 + b"}", "json_number_too_large"),
    (b'{"name": "x", "n": NaN}', "invalid_json"),
    (b'{"name": "x", "description": "\\u0000"}', "unsupported_character"),
    (b'{"name": "x", "description": "\\udc00"}', "unsupported_character"),
    (b'{"name": "x", "description": "\xff"}', "invalid_json"),
])
def test_json_bodies_are_read_as_strictly_as_a_bundles_documents(client, body, code):
    response = client.post("/api/v1/clusters/", data=body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, code), response.content[:300]
    assert not Cluster.objects.exists()


def test_a_json_body_declaring_thousands_of_digits_of_length_is_refused(client):
    response = client.post("/api/v1/clusters/", data=b'{"name": "x"}', content_type="application/json",
                           CONTENT_LENGTH="9" * 5000)
    assert 400 <= response.status_code < 500 and not Cluster.objects.exists()


@pytest.mark.parametrize("path", ["/repo", "/v2/", "/api/v1/packages/", "/resource/x/sha256:0/f"])
def test_basic_credentials_that_are_not_ascii_are_refused(client, path):
    response = client.get(path, headers={"Authorization": "Basic \xfe\xff"})
    assert response.status_code == 401, response.content
