"""The README's run command on embedded defaults: web server and worker up, ready, stopped by Ctrl-C."""

import signal
import subprocess
import sys

import pytest

from tests.processes import PROJECT_DIR, free_port, get_json, manage, registry_env, stop, wait_until

pytestmark = pytest.mark.slow

STALE_JOB = (
    "from datetime import timedelta; from django.utils import timezone; from ingest.models import IngestJob;"
    "print(IngestJob.objects.create(state='running', stage='store', bundle_name='lost.dcos',"
    " started_at=timezone.now() - timedelta(hours=2), heartbeat_at=timezone.now() - timedelta(hours=1)).pk)"
)


def test_run_command_serves_ready_and_stops_on_ctrl_c(tmp_path):
    data = tmp_path / "data"
    env = registry_env(data, VENV=sys.prefix, DISK_FREE_THRESHOLD_BYTES="1")
    port = free_port()
    run = subprocess.Popen(
        ["bash", "scripts/run.sh", "--bind", f"127.0.0.1:{port}"], cwd=PROJECT_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
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

        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
    finally:
        stop(run)
        output = run.stdout.read()
    assert "Registry stopped." in output, output
    with pytest.raises(OSError):
        get_json(f"http://127.0.0.1:{port}/health", timeout=2)
