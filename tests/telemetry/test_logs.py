"""Structured logs: JSON lines of one shape, ingest lines that name their job, one line per request."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from telemetry.logs import formatter
from tests.bundles import make_bundle

STAGE_FINISHED = re.compile(r"^Ingest stage (\w+) finished in [0-9.]+ s$")


@pytest.fixture
def json_lines():
    """What the registry logs during the test, rendered as in production: one JSON object a line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


@pytest.mark.usefixtures("registry")
def test_ingest_lines_carry_the_job_and_request_lines_the_request(client, tmp_path, json_lines):
    built = make_bundle(tmp_path / "b")
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202
    job_id = response.json()["id"]
    client.get("/metrics")
    client.get("/api/v1/jobs/not-a-job/")

    lines = json_lines()
    assert all({"timestamp", "level", "logger", "event"} <= line.keys() for line in lines)

    ingest = [line for line in lines if line["logger"].startswith("ingest.")]
    assert ingest and all(line["job_id"] == job_id for line in ingest)
    # Package and version are known from validation on: every line from then on names them.
    events = [line["event"] for line in ingest]
    finished_stages = [match[1] for event in events if (match := STAGE_FINISHED.match(event))]
    assert finished_stages == ["receive", "inspect", "validate", "verify_images", "store", "publish"]
    after_validation = ingest[next(i for i, event in enumerate(events) if event.startswith("Ingest stage validate")):]
    assert after_validation[-1]["event"] == "Ingest job succeeded"
    assert all((line["package"], line["version"]) == ("hello", "1.0.0") for line in after_validation)
    assert ingest[0]["package"] is None  # the receive stage does not know them yet

    requests = [line for line in lines if line["logger"] == "registry_site.requests"]
    assert [(line["method"], line["path"], line["route"], line["status"]) for line in requests] == [
        ("POST", "/api/v1/bundles/", "api/v1/bundles/", 202),
        ("GET", "/api/v1/jobs/not-a-job/", "api/v1/jobs/<pk>/", 404),
    ]  # the scrape of /metrics made no line
    assert all(line["duration_ms"] >= 0 and line["bytes"] > 0 for line in requests)
    # The job's context ends with its tasks: the request line does not inherit it.
    assert "job_id" not in requests[0]
