"""The data directory and the secret key kept in it, prepared by each program before Django reads the settings.

Plain Python, no Django. manage.py, gunicorn's configuration and the WSGI application call
``prepare()`` first; the settings module only reads (``data_dir()``, ``kept_secret_key()``), so
importing it writes nothing. The folders the settings name inside the data directory are created
at start-up by ``RegistrySiteConfig.ready()``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"


def data_dir() -> Path:
    return Path(os.environ.get("REGISTRY_DATA_DIR") or BASE_DIR / "data").resolve()


def kept_secret_key(directory: Path) -> str:
    """The key ``prepare()`` keeps in ``directory``; empty while there is none."""
    try:
        return (directory / SECRET_KEY_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def prepare() -> None:
    """Create the data directory and, unless SECRET_KEY is configured, generate the key kept in it (once)."""
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if os.environ.get("SECRET_KEY") or kept_secret_key(directory):
        return
    # Written whole, then linked into place: a process starting at the same moment reads either no key
    # or the whole key, and the first link wins.
    fd, written = tempfile.mkstemp(dir=directory, prefix=f".{SECRET_KEY_FILE}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
        os.link(written, directory / SECRET_KEY_FILE)
    except FileExistsError:
        pass
    finally:
        os.unlink(written)
