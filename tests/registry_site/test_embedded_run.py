"""The README's run command on embedded defaults: web server and worker up, ready, counted in one
/metrics, logging in the console format, stopped by Ctrl-C."""

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile

import pytest

from dcos_bundle.format import BUNDLE_MEDIA_TYPE, OCI_BLOBS_DIR
from dcos_bundle.version import installed_version
from tests.bundles import make_bundle
from tests.processes import PROJECT_DIR, free_port, get_json, manage, registry_env, stop, wait_until
from tests.registry_site.test_metrics import parse
from tests.registry_site.test_readme_quick_check import quick_check_on_another_address

pytestmark = pytest.mark.slow
HEALTH_REQUESTS = 20
# The default bundle's bigger layer, not its smaller one.
ARRIVAL_MIN_BYTES = 128 * 1024

STALE_JOB = (
    "from datetime import timedelta; from django.utils import timezone; from ingest.models import IngestJob;"
    "print(IngestJob.objects.create(state='running', stage='store', bundle_name='lost.dcos',"
    " started_at=timezone.now() - timedelta(hours=2), heartbeat_at=timezone.now() - timedelta(hours=1)).pk)"
)


def scrape(base_url: str) -> dict[tuple, float]:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        return parse(response.read().decode())


def arriving_layers(path) -> int:
    """How many layers of the bundle are big enough to be checked as soon as they arrived."""
    with zipfile.ZipFile(path) as archive:
        return sum(1 for info in archive.infolist() if info.filename.startswith(OCI_BLOBS_DIR)
                   and info.compress_type == zipfile.ZIP_STORED and info.compress_size >= ARRIVAL_MIN_BYTES)


def check_metrics_and_logs_of_all_processes(base_url: str, token: str, tmp_path) -> None:
    """A bundle ingested by the worker, requests served by two web workers: every scrape counts them all."""
    built = make_bundle(tmp_path / "bundle")
    upload = urllib.request.Request(f"{base_url}/api/v1/bundles/", data=built.path.read_bytes(), method="POST",
                                    headers={"Content-Type": BUNDLE_MEDIA_TYPE, "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(upload, timeout=30) as response:
        job_url = f"{base_url}/api/v1/jobs/{json.load(response)['id']}/"
    job = wait_until(lambda: (job := get_json(job_url)[1])["state"] in ("succeeded", "failed") and job,
                     timeout=60, what="the worker to ingest the bundle", interval=0.5)
    assert job["state"] == "succeeded", job
    for _ in range(HEALTH_REQUESTS):
        get_json(f"{base_url}/health")  # a connection each: both web workers answer some

    # Served to this host (METRICS_ACCESS=network), but not to an outside client a local proxy forwards.
    forwarded = urllib.request.Request(f"{base_url}/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forwarded, timeout=10)
    assert refused.value.code == 403 and json.load(refused.value)["code"] == "permission_denied"
    for _ in range(4):  # whichever web worker answers the scrape
        samples = scrape(base_url)
        assert samples[("registry_http_requests_total", ("cluster", ""), ("method", "GET"), ("route", "health"),
                        ("status", "200"))] == HEALTH_REQUESTS
        # Counted in the worker's processes, seen from the web.
        assert samples[("registry_ingest_jobs_finished_total", ("error_code", ""), ("outcome", "succeeded"))] == 1
        assert samples[("registry_ingest_stage_duration_seconds_count", ("stage", "publish"))] == 1
        assert samples[("registry_ingest_bundle_bytes_total",)] == built.path.stat().st_size
        assert samples[("registry_ingest_jobs", ("state", "succeeded"))] == 1
        # Its big layers were checked by the worker while the upload still arrived, and the job took them.
        assert samples[("registry_ingest_arrived_layers_total", ("outcome", "stored"))] == arriving_layers(built.path)
        assert samples[("registry_broker_queue_messages", ("queue", "celery"))] == 0


def test_run_command_serves_ready_and_stops_on_ctrl_c(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    # The README's settings for another address (on a free port), given to what `make run` runs.
    readme_settings, readme_address = quick_check_on_another_address()
    env = registry_env(data, VENV=sys.prefix, DISK_FREE_THRESHOLD_BYTES="1",
                       INGEST_ARRIVAL_MIN_BYTES=str(ARRIVAL_MIN_BYTES), **{
        name: value.replace(readme_address, f"127.0.0.1:{port}") for name, value in readme_settings.items()})
    run = subprocess.Popen(["bash", "scripts/run.sh"], cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        status, ready = wait_until(
            lambda: (result := get_json(f"http://127.0.0.1:{port}/health/ready"))[0] == 200 and result,
            timeout=90, what="the run command to become ready",
        )
        checks = ready["checks"]
        assert checks["database"]["vendor"] == "sqlite"
        assert checks["broker"]["transport"] == "filesystem"
        assert checks["blob_store"]["backend"] == f"local:{data / 'storage'}"
        assert (data / "registry.sqlite3").exists()

        # The worker really consumes from the embedded broker: it reaps a job whose heartbeat stopped.
        job_id = manage("shell", "--verbosity", "0", "-c", STALE_JOB, env=env).stdout.strip()
        manage("shell", "-c", "from ingest.tasks import reap_stuck_jobs; reap_stuck_jobs.delay()", env=env)
        state_of_job = f"from ingest.models import IngestJob; print(IngestJob.objects.get(pk='{job_id}').state)"
        wait_until(
            lambda: manage("shell", "--verbosity", "0", "-c", state_of_job, env=env).stdout.strip() == "failed",
            timeout=60, what="the worker to reap the stale job", interval=1,
        )

        # An operator's first step: a token to upload with.
        token = manage("tokens", "create", "--name", "operator", "--scope", "write", env=env).stdout.strip()
        check_metrics_and_logs_of_all_processes(f"http://127.0.0.1:{port}", token, tmp_path)
        # PUBLIC_BASE_URL as the README sets it: the asset URLs handed to clusters name this address.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/repo", timeout=10) as response:
            assert f'"http://127.0.0.1:{port}/resource/' in response.read().decode()

        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
    finally:
        stop(run)
        output = run.stdout.read()
    assert f"Registry {installed_version()} running on http://127.0.0.1:{port}/ (web pid " in output, output
    assert "Registry stopped." in output, output
    # Console log lines from web and worker, one per request and none from gunicorn's access log.
    assert not [line for line in output.splitlines() if line.startswith("{")], output
    assert re.search(r"\[info +\] request +\[registry_site\.requests\] bytes=16 duration_ms=[0-9.]+ method=GET "
                     r"path=/health route=health status=200", output), output
    assert '"GET /health HTTP/1.1" 200' not in output
    assert re.search(r"\[info +\] celery@\S+ ready\.", output), output
    assert re.search(r"\[info +\] Ingest job succeeded +\[ingest\.pipeline\] job_id=\S+ package=hello version=1\.0\.0",
                     output), output
    with pytest.raises(OSError):
        get_json(f"http://127.0.0.1:{port}/health", timeout=2)
