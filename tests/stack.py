"""A registry with services of its own, for fault tests: its own PostgreSQL, Redis and SeaweedFS, which the
tests stop, kill and start again, and its own web and worker processes. The suite's shared services are
never touched: every service here runs on ports and in directories of its own.

PostgreSQL refuses to run as root: run as root, its commands run as the unprivileged ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import redis
import requests
from botocore.config import Config

from tests.processes import PROJECT_DIR, free_port, manage, registry_env, wait_until
from tests.services import service_missing

BUCKET = "registry"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_with_grpc() -> int:
    """A free port whose SeaweedFS gRPC twin (port + 10000) is free too."""
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if port_free(port) and port_free(port + 10000):
            return port
    raise RuntimeError("No free pair of ports for SeaweedFS.")


def _log(path: Path):
    return open(path, "ab")


class OwnRedis:
    """A Redis without persistence: killed and started again, it comes back empty, as such a broker does."""

    def __init__(self, directory: Path):
        self.directory, self.port, self.process = directory, free_port(), None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=_log(self.directory / "redis.log"), stderr=subprocess.STDOUT)
        wait_until(lambda: redis.Redis(port=self.port, socket_connect_timeout=1).ping(), timeout=20,
                   what="the test's Redis", interval=0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class OwnPostgres:
    """A PostgreSQL cluster initialised into a directory of its own; ``stop`` is a crash (immediate mode)."""

    def __init__(self):
        self.port = free_port()
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                service_missing("PostgreSQL", "running as root needs the unprivileged user postgres to run it")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        else:
            owner, self.as_owner = None, []
        if shutil.which("initdb") is None:
            service_missing("PostgreSQL", "initdb is not on the PATH")
        # Not under pytest's temporary directory: only root may enter that.
        self.directory = Path(tempfile.mkdtemp(prefix="registry-faults-pg-"))
        if owner is not None:
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.directory / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_owner, *command], check=True, capture_output=True, cwd="/", timeout=120)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/registry"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-l", str(self.directory / "postgresql.log"), "-w",
                  "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def create_database(self) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "registry")

    def stop(self) -> None:
        """As if it crashed: no shutdown checkpoint, every connection cut; the next start recovers."""
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")

    @property
    def running(self) -> bool:
        return subprocess.run([*self.as_owner, "pg_ctl", "-D", str(self.directory / "data"), "status"], cwd="/",
                              capture_output=True).returncode == 0

    def destroy(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


class OwnSeaweedFS:
    """SeaweedFS started by scripts/seaweedfs.sh with a directory and ports of its own."""

    ACCESS_KEY, SECRET_KEY = "registry-test", "registry-test-secret"

    def __init__(self, directory: Path):
        self.directory = directory
        self.s3_port = free_port_with_grpc()
        ports = {"SEAWEEDFS_S3_PORT": self.s3_port}
        for component in ("MASTER", "VOLUME", "FILER", "ADMIN"):
            ports[f"SEAWEEDFS_{component}_PORT"] = free_port_with_grpc()
        self.env = {**os.environ, "SEAWEEDFS_DIR": str(directory), "VENV": sys.prefix,
                    **{name: str(port) for name, port in ports.items()}}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def _script(self, action: str) -> None:
        subprocess.run(["bash", "scripts/seaweedfs.sh", action], cwd=PROJECT_DIR, env=self.env, check=True,
                       capture_output=True, timeout=120)

    def start(self) -> None:
        self._script("start")

    def kill(self) -> None:
        """SIGKILL: gone at once, in the middle of whatever it was answering."""
        pid_file = self.directory / "weed.pid"
        try:
            pid = int(pid_file.read_text())
            # Ours only while it still runs weed (as the script checks): a pid may be reused.
            if b"weed" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return
            os.killpg(pid, signal.SIGKILL)  # the script starts it as the leader of its own session
        except (FileNotFoundError, ProcessLookupError):
            return
        finally:
            pid_file.unlink(missing_ok=True)
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
                   .lower(), timeout=10, what="SeaweedFS to die", interval=0.1)

    @property
    def running(self) -> bool:
        return subprocess.run(["bash", "scripts/seaweedfs.sh", "status"], cwd=PROJECT_DIR, env=self.env,
                              capture_output=True).returncode == 0

    def create_bucket(self) -> None:
        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.ACCESS_KEY,
                     aws_secret_access_key=self.SECRET_KEY, region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=BUCKET)


def web_command(port: int) -> list[str]:
    """One gunicorn web process of the registry on 127.0.0.1:``port``, as the run command configures it."""
    return [
        sys.executable, "-m", "gunicorn", "registry_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "1", "--worker-class", "gthread", "--threads", "4",
        "--config", "python:registry_site.gunicorn_conf",
    ]


def worker_command(name: str, concurrency: int, *options: str) -> list[str]:
    """A Celery worker of the registry named ``name`` (the name its log lines and task records show)."""
    return [
        sys.executable, "-m", "celery", "--app", "registry_site", "worker", "--hostname", f"{name}@%h",
        "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle", *options,
    ]


class RegistryProcess:
    """A web (gunicorn) or worker (Celery, with beat) process of the registry, in a process group of its own."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path):
        self.name, self.command, self.env, self.log = name, command, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, cwd=PROJECT_DIR, env=self.env, stdout=_log(self.log),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL to the whole group at once: nothing gets to clean up, acknowledge or answer."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Stack:
    """The registry and its services; ``settings`` are the environment of its processes (short bounds)."""

    def __init__(self, directory: Path, settings: dict[str, str]):
        self.directory = directory
        self.redis = OwnRedis(directory / "redis")
        self.postgres = OwnPostgres()
        self.seaweedfs = OwnSeaweedFS(directory / "seaweedfs")
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.env = registry_env(
            directory / "data",
            DATABASE_URL=self.postgres.url, CELERY_BROKER_URL=self.redis.url,
            STORAGE_URL=f"s3://{BUCKET}/blobs", S3_ENDPOINT_URL=self.seaweedfs.endpoint,
            S3_ACCESS_KEY_ID=OwnSeaweedFS.ACCESS_KEY, S3_SECRET_ACCESS_KEY=OwnSeaweedFS.SECRET_KEY,
            S3_REGION="us-east-1", PUBLIC_BASE_URL=self.url, DISK_FREE_THRESHOLD_BYTES="1", UPLOADS_PER_MINUTE="0",
            LOG_FORMAT="console", **settings,
        )
        # One web process: what it served last is what it keeps serving during an outage.
        self.web = RegistryProcess("web", web_command(self.web_port), self.env, directory / "web.log")
        self.worker = RegistryProcess("worker", worker_command(
            "worker", 2, "--beat", "--schedule", str(directory / "data" / "celerybeat-schedule"),
        ), self.env, directory / "worker.log")
        self.token = ""

    def start(self) -> None:
        self.redis.start()
        self.postgres.start()
        self.postgres.create_database()
        self.seaweedfs.start()
        self.seaweedfs.create_bucket()
        manage("migrate", "--verbosity", "0", env=self.env, timeout=300)
        self.token = manage("tokens", "create", "--name", "faults", "--scope", "admin", env=self.env).stdout.strip()
        self.start_web()
        self.worker.start()

    def start_web(self) -> None:
        self.web.start()
        wait_until(lambda: requests.get(f"{self.url}/health", timeout=2).ok, timeout=60, what="the web process")

    def ensure_up(self) -> None:
        """Everything running again, whatever the last test stopped."""
        if not self.redis.running:
            self.redis.start()
        if not self.postgres.running:
            self.postgres.start()
        if not self.seaweedfs.running:
            self.seaweedfs.start()
        if not self.web.running:
            self.start_web()
        if not self.worker.running:
            self.worker.start()

    def destroy(self) -> None:
        for process in (self.worker, self.web):
            process.kill()
        self.redis.kill()
        self.seaweedfs.kill()
        self.postgres.destroy()

    def http(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return manage(*args, env=self.env, check=check)

    def worker_log(self) -> str:
        return (self.directory / "worker.log").read_text(errors="replace")

    def job(self, job_url: str) -> dict | None:
        """The job, or None while the registry cannot answer (an outage)."""
        try:
            response = self.http().get(job_url, timeout=10)
        except requests.ConnectionError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_for_job(self, job_url: str, timeout: float) -> tuple[dict, float]:
        """The job once it ended, and how many seconds that took."""
        started = time.monotonic()

        def ended():
            job = self.job(job_url)
            return job if job is not None and job["state"] in ("succeeded", "failed", "cancelled") else None

        job = wait_until(ended, timeout=timeout, what=f"job {job_url} to end", interval=0.25)
        return job, time.monotonic() - started
