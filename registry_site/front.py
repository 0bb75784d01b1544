"""nginx in front of the web processes: the run command's serving path (docs/architecture.md, "Serving").

nginx listens on the registry's address and holds the clients, slow ones included; gunicorn listens on a Unix
socket only nginx reaches and gets whole requests. Its configuration is rendered from ``nginx.conf.template``
into ``$REGISTRY_DATA_DIR/nginx/`` at each start, with the timeouts of the settings.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from blobs.drivers import LocalBlobStore
from blobs.store import blob_store
from packages_app.blob_responses import ACCEL_BLOB_LOCATION

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
# WEB_FRONT: "auto" puts nginx in front when it is installed (the image ships it; `make run` may lack it),
# "nginx" requires it, "none" serves from gunicorn directly.
FRONT_CHOICES = ("auto", "nginx", "none")
# The longest path a Unix socket may have (sun_path), less a margin.
MAX_SOCKET_PATH = 100


def nginx_executable() -> str | None:
    return shutil.which("nginx")


class NginxFront:
    """The rendered configuration and the command of one run's nginx."""

    def __init__(self, listen: str, executable: str):
        self.listen, self.executable = listen, executable
        self.directory = settings.DATA_DIR / "nginx"
        self.directory.mkdir(exist_ok=True)
        socket = self.directory / "web.sock"
        if len(str(socket)) > MAX_SOCKET_PATH:
            # A deep data directory: the socket goes where its path fits.
            socket = Path(tempfile.mkdtemp(prefix="registry-web-")) / "web.sock"
        self.socket = socket
        # A previous run's: the run command waits for gunicorn to create it before starting nginx.
        socket.unlink(missing_ok=True)
        self.config = self.directory / "nginx.conf"

    @property
    def gunicorn_bind(self) -> str:
        return f"unix:{self.socket}"

    def render(self) -> Path:
        store = blob_store()
        values = {
            # Run as root (a test, a bare host), nginx's workers would otherwise run as nobody, who cannot read
            # the blobs; as any other user (the image's), the directive would be ignored with a warning.
            "user": f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else "",
            "worker_processes": str(settings.NGINX_WORKER_PROCESSES),
            "run_dir": str(self.directory),
            "client_header_timeout": str(settings.CLIENT_HEADER_TIMEOUT_SECONDS),
            "client_body_timeout": str(settings.CLIENT_BODY_TIMEOUT_SECONDS),
            "send_timeout": str(settings.SEND_TIMEOUT_SECONDS),
            "keepalive_timeout": str(settings.KEEPALIVE_TIMEOUT_SECONDS),
            "socket": str(self.socket),
            "listen": self.listen,
            "blob_location": ACCEL_BLOB_LOCATION,
            # With S3 the registry never hands bytes to nginx (clients are redirected to S3): an empty folder.
            "blob_root": str(store.root if isinstance(store, LocalBlobStore) else self._empty_folder()),
        }
        text = TEMPLATE.read_text()
        for name, value in values.items():
            text = text.replace("{{" + name + "}}", value)
        self.config.write_text(text)
        return self.config

    def _empty_folder(self) -> Path:
        folder = self.directory / "no-blobs"
        folder.mkdir(exist_ok=True)
        return folder

    def command(self) -> list[str]:
        return [self.executable, "-p", str(self.directory), "-c", str(self.render()), "-e", "stderr",
                "-g", "daemon off;"]
