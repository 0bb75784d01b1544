"""Run the whole registry in the foreground: the web server and a Celery worker.

The web server is nginx in front of gunicorn when nginx is installed (``registry_site/front.py``; WEB_FRONT or
``--front`` chooses), gunicorn alone otherwise: `make run` needs nothing its install does not bring.
``--web-only`` runs the web server without a worker (a web task of a deployment whose workers run apart).

The children share a Prometheus multiprocess directory (``$REGISTRY_DATA_DIR/metrics``, emptied
at each start), so the web's /metrics adds up the counts of every web and worker process; they
log in the readable console format unless LOG_FORMAT says otherwise.

Every child gets SIGTERM when this command gets Ctrl-C (SIGINT) or SIGTERM, and if one child dies
the others are stopped too, so the registry never runs half-alive.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from blobs.store import StorageBackendMismatch, ensure_backend_lock
from dcos_bundle.version import installed_version
from registry_site.front import FRONT_CHOICES, NginxFront, nginx_executable

STOP_TIMEOUT_SECONDS = 30


class Command(BaseCommand):
    help = "Run the web server and a Celery worker (with beat) in the foreground; Ctrl-C stops them."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("LISTEN_ADDRESS", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument(
            "--worker-concurrency", type=int, default=int(os.environ.get("CELERY_WORKER_CONCURRENCY", "2"))
        )
        parser.add_argument("--front", choices=FRONT_CHOICES, default=os.environ.get("WEB_FRONT", "auto"))
        parser.add_argument("--web-only", action="store_true", help="Run no worker (workers run elsewhere).")

    def handle(self, *args, bind, web_workers, worker_concurrency, front, web_only, **options):
        try:
            ensure_backend_lock()
        except StorageBackendMismatch as mismatch:
            raise CommandError(str(mismatch)) from None

        self._stopping = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._request_stop)

        env = self._children_env()
        nginx = self._nginx_front(front, bind)
        if nginx is not None:
            env["SERVED_BY_NGINX"] = "true"
        commands = {
            "web": [
                sys.executable, "-m", "gunicorn", "registry_site.wsgi:application",
                "--bind", nginx.gunicorn_bind if nginx else bind, "--workers", str(web_workers),
                "--worker-class", "gthread", "--threads", "4", "--config", "python:registry_site.gunicorn_conf",
            ],
        }
        if nginx is not None:
            commands["nginx"] = nginx.command()
        if not web_only:
            commands["worker"] = [
                sys.executable, "-m", "celery", "--app", "registry_site", "worker",
                "--concurrency", str(worker_concurrency), "--loglevel", "INFO",
                # One process for the embedded run: beat rides along with the worker.
                "--beat", "--schedule", str(settings.DATA_DIR / "celerybeat-schedule"),
            ]
        # Own sessions: the terminal's Ctrl-C reaches only us, and we stop the children in order.
        children = {}
        for name, command in commands.items():
            if name == "nginx":
                self._wait_for_socket(nginx, children["web"])
            children[name] = subprocess.Popen(command, start_new_session=True, env=env)
        pids = ", ".join(f"{name} pid {child.pid}" for name, child in children.items())
        self.stdout.write(f"Registry {installed_version()} running on http://{bind}/ ({pids}); Ctrl-C stops it.")

        exited = None
        while not self._stopping and exited is None:
            exited = next((name for name, child in children.items() if child.poll() is not None), None)
            time.sleep(0.2)

        self._stop(children)
        if exited is not None:
            raise CommandError(f"The {exited} process exited with code {children[exited].returncode}; stopped the rest.")
        self.stdout.write("Registry stopped.")

    def _nginx_front(self, front: str, bind: str) -> NginxFront | None:
        if front == "none":
            return None
        executable = nginx_executable()
        if executable is None:
            if front == "nginx":
                raise CommandError("WEB_FRONT=nginx, but nginx is not installed (apt-get install nginx).")
            self.stderr.write("nginx is not installed: gunicorn serves clients directly (see docs/architecture.md).")
            return None
        return NginxFront(bind, executable)

    def _wait_for_socket(self, nginx: NginxFront, web: subprocess.Popen) -> None:
        """nginx starts listening once gunicorn does: until then clients are refused, never answered 502."""
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while not nginx.socket.exists() and web.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def _children_env(self) -> dict[str, str]:
        metrics_dir = settings.DATA_DIR / "metrics"
        # Counts of a previous run would otherwise be added to this one's.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        env.setdefault("LOG_FORMAT", "console")
        return env

    def _request_stop(self, signum, frame):
        self._stopping = True

    def _stop(self, children: dict[str, subprocess.Popen]) -> None:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
