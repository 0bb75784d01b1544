"""No job is lost or stuck, for real: a registry with its own Redis, PostgreSQL and SeaweedFS (tests/stack.py),
whose broker, database and blob store go away and come back, and whose web and worker processes are killed
with SIGKILL and started again. Every job ends succeeded, or failed retryably and its retry succeeds, within
JOB_BOUND_SECONDS of the fault's end (the bounds are the short ones of conftest.FAULT_SETTINGS), and
verify_blobs finds every recorded blob whole afterwards."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from tests.bundles import ImageSpec, make_bundle
from tests.processes import wait_until

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
# Redispatch after 10 s + the sweep's second + a worker's reconnection to a restarted broker (2-8 s) + the
# ingest itself; with the production defaults the same sum is about 6 minutes (docs/upload-api.md).
JOB_BOUND_SECONDS = 45


def bundle(tmp_path, name: str, layers: list[int] | None = None):
    return make_bundle(tmp_path / name, name=name,
                       images=[ImageSpec("server", f"example/{name}:1", layers or [2 * MiB, 300_000])])


def upload(stack, built) -> str:
    response = stack.http().post(f"{stack.url}/api/v1/bundles/", data=built.path.read_bytes(), timeout=60,
                                 headers={"Content-Type": BUNDLE_MEDIA_TYPE})
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def open_upload(stack, built) -> dict:
    digest = "sha256:" + hashlib.sha256(built.path.read_bytes()).hexdigest()
    response = stack.http().post(f"{stack.url}/api/v1/uploads/", timeout=10,
                                 json={"size": built.path.stat().st_size, "sha256": digest, "file_name": built.path.name})
    assert response.status_code == 201, response.text
    return response.json()


def send_chunks(stack, session: dict, built, start: int, end: int) -> None:
    size = built.path.stat().st_size
    with open(built.path, "rb") as file:
        file.seek(start)
        response = stack.http().put(session["url"], data=file.read(end - start), timeout=30,
                                    headers={"Content-Range": f"bytes {start}-{end - 1}/{size}"})
    assert response.status_code == 200, response.text


def commit(stack, session: dict):
    return stack.http().post(session["url"] + "commit/", json={}, timeout=30)


def layers_under_way(stack, job_url: str) -> None:
    def under_way():
        job = stack.job(job_url) or {}
        assert job.get("state") != "succeeded", "the job ended before the fault could meet it"
        stage = next((stage for stage in job.get("stages", []) if stage["stage"] == "verify_images"), None)
        return stage is not None and stage["bytes_done"] > 0

    wait_until(under_way, timeout=60, what="the job's layers to be under way", interval=0.05)


def assert_succeeded_in_bound(stack, job_url: str) -> dict:
    job, seconds = stack.wait_for_job(job_url, timeout=JOB_BOUND_SECONDS + 30)
    assert job["state"] == "succeeded", job["error"]
    assert seconds < JOB_BOUND_SECONDS, f"the job took {seconds:.0f} s"
    return job


def assert_blobs_whole(stack) -> None:
    verified = stack.manage("verify_blobs", "--json", check=False)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["checked"] > 0 and not report["missing"] and not report["corrupt"], report


def shell(stack, code: str) -> str:
    return stack.manage("shell", "--verbosity", "0", "-c", code).stdout.strip()


def test_a_commit_the_broker_cannot_take_is_refused_and_made_once_it_is_back(stack, tmp_path):
    built = bundle(tmp_path, "broker-down")
    session = open_upload(stack, built)
    send_chunks(stack, session, built, 0, built.path.stat().st_size)
    stack.redis.kill()
    refused = commit(stack, session)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "3", refused.text
    assert refused.json()["code"] == "broker_unavailable"
    assert stack.http().get(session["url"], timeout=10).json()["state"] == "open"

    stack.redis.start()
    response = commit(stack, session)
    assert response.status_code == 202, response.text
    assert_succeeded_in_bound(stack, response.headers["Location"])
    assert_blobs_whole(stack)


def test_a_job_queued_when_the_broker_restarts_empty_is_sent_again(stack, tmp_path):
    stack.worker.kill()
    logged_before = len(stack.worker_log())
    job_url = upload(stack, bundle(tmp_path, "broker-restart"))
    # Redis without persistence: the queued task is gone with it.
    stack.redis.kill()
    stack.redis.start()
    stack.worker.start()
    assert_succeeded_in_bound(stack, job_url)
    assert "waited too long for its next task; sending it again (run)" in stack.worker_log()[logged_before:]
    assert_blobs_whole(stack)


def test_a_database_outage_during_the_layers_is_waited_out(stack, tmp_path):
    job_url = upload(stack, bundle(tmp_path, "database-blip", [8 * MiB] * 4))
    layers_under_way(stack, job_url)
    logged_before = len(stack.worker_log())
    stack.postgres.stop()
    time.sleep(4)
    stack.postgres.start()
    assert_succeeded_in_bound(stack, job_url)
    # The outage did meet the job's tasks, which waited it out.
    assert "retry: Retry in 1s: OperationalError" in stack.worker_log()[logged_before:]
    assert_blobs_whole(stack)


def test_a_job_whose_end_could_not_be_written_goes_on_once_the_database_is_back(stack, tmp_path):
    job_url = upload(stack, bundle(tmp_path, "database-away", [8 * MiB] * 4))
    layers_under_way(stack, job_url)
    logged_before = len(stack.worker_log())
    stack.postgres.stop()
    # Far longer than the tasks' retries (7 s of waiting): their last attempts cannot even write the job's failure.
    time.sleep(20)
    stack.postgres.start()
    back = time.monotonic()
    assert_succeeded_in_bound(stack, job_url)
    assert time.monotonic() - back < JOB_BOUND_SECONDS
    assert "waited too long for its next task; sending it again" in stack.worker_log()[logged_before:]
    assert_blobs_whole(stack)


def test_a_blob_store_outage_past_the_retries_fails_the_job_retryably_and_its_retry_succeeds(stack, tmp_path):
    job_url = upload(stack, bundle(tmp_path, "blob-store-down", [8 * MiB] * 4))
    layers_under_way(stack, job_url)
    stack.seaweedfs.kill()
    job, _ = stack.wait_for_job(job_url, timeout=JOB_BOUND_SECONDS)
    assert (job["state"], job["error"]["code"]) == ("failed", "service_unavailable")
    assert "blob store was unavailable" in job["error"]["message"]

    stack.seaweedfs.start()
    # The release the outage cut short is finished by the reaper: no claim is left.
    claims = f"from ingest.models import JobBlob; print(JobBlob.objects.filter(job_id='{job['id']}').count())"
    wait_until(lambda: shell(stack, claims) == "0", timeout=30, what="the reaper to finish the release", interval=1)
    retried = shell(stack, "from access.auth import OPERATOR; from ingest.models import IngestJob; "
                           "from ingest.services import retry_job; "
                           f"print(retry_job(IngestJob.objects.get(pk='{job['id']}'), OPERATOR.actor()).pk)")
    assert_succeeded_in_bound(stack, f"{stack.url}/api/v1/jobs/{retried}/")
    assert_blobs_whole(stack)


def test_killed_web_and_worker_processes_are_replaced_and_the_job_completes(stack, tmp_path):
    built = bundle(tmp_path, "killed", [8 * MiB] * 4)
    size = built.path.stat().st_size
    session = open_upload(stack, built)
    send_chunks(stack, session, built, 0, size // 2)
    stack.web.kill()
    stack.start_web()
    offset = int(stack.http().head(session["url"], timeout=10).headers["Upload-Offset"])
    assert offset == size // 2
    send_chunks(stack, session, built, offset, size)
    response = commit(stack, session)
    assert response.status_code == 202, response.text
    job_url = response.headers["Location"]

    layers_under_way(stack, job_url)
    stack.worker.kill()
    assert stack.job(job_url)["state"] == "running"
    stack.worker.start()
    assert_succeeded_in_bound(stack, job_url)
    assert_blobs_whole(stack)
