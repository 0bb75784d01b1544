"""Running the registry's own processes (manage.py, workers, the run command) from tests."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Settings a test process must not inherit from the suite's own environment.
REGISTRY_VARIABLES = (
    "DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_URL", "S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY", "S3_REGION", "REGISTRY_DATA_DIR", "PUBLIC_BASE_URL", "DISK_FREE_THRESHOLD_BYTES",
    "SECRET_KEY",
)


def registry_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """An environment with the embedded defaults under ``data_dir``, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in REGISTRY_VARIABLES}
    env.update(REGISTRY_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="registry_site.settings", **settings)
    return env


def manage(*args: str, env: dict[str, str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
        timeout=timeout, check=check,
    )


def free_port() -> int:
    """A free port on 127.0.0.1: within TEST_PORT_RANGE (``first-last``) when it is set, for a machine whose users
    share out port ranges; any otherwise."""
    first, _, last = os.environ.get("TEST_PORT_RANGE", "0-0").partition("-")
    for port in random.sample(range(int(first), int(last) + 1), int(last) - int(first) + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError(f"No free port in TEST_PORT_RANGE={os.environ['TEST_PORT_RANGE']}.")


def get_json(url: str, timeout: float = 5) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_until(condition, timeout: float, what: str, interval: float = 0.25):
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (OSError, urllib.error.URLError) as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {what} (last error: {last_error}).")


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
