"""A client of a running registry's API: what the `dcos-registry` verbs add, describe, list,
remove, set-default and jobs speak. Plain Python (requests, no Django).

Every refusal of the registry becomes an RegistryError with the registry's own code, message and
details, so the command prints exactly what the registry said. The token is sent, never shown.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

import requests
from tqdm import tqdm

from dcos_bundle.digests import CHUNK_SIZE, HashingCopier, sha256_hex
from dcos_bundle.errors import ErrorCode, RegistryError, RemoteError

# Each chunk is one request the registry makes durable before it answers: fewer, bigger ones cost less per byte,
# and a broken connection costs at most one chunk again.
DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024
# A refused (429) request, or one the registry could not serve for a while (503 with Retry-After: its database,
# blob store or task queue was away), is sent again after Retry-After, this many times.
THROTTLE_RETRIES = 5
MAX_RETRY_AFTER_SECONDS = 60
# (connect, read): the registry answers a chunk once it is on disk, a commit once the job is queued.
TIMEOUT = (30, 600)
FINISHED_JOB_STATES = ("succeeded", "failed", "cancelled")
# Test hook: the process kills itself after sending this many chunks, as an interrupted upload would end.
STOP_AFTER_CHUNKS_VARIABLE = "DCOS_REGISTRY_STOP_AFTER_CHUNKS"


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None = field(default=None, repr=False)


def config_path(environ=os.environ) -> Path:
    if explicit := environ.get("DCOS_REGISTRY_CONFIG"):
        return Path(explicit)
    return Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "dcos-registry" / "config.json"


def state_directory(environ=os.environ) -> Path:
    if explicit := environ.get("DCOS_REGISTRY_STATE_DIR"):
        return Path(explicit)
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dcos-registry"


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise RegistryError(ErrorCode.CONFIG_INVALID, f"Cannot read the configuration file {path}: {error}.", path=str(path))
    if not isinstance(config, dict):
        raise RegistryError(ErrorCode.CONFIG_INVALID, f"The configuration file {path} must hold a JSON object.", path=str(path))
    return config


def find_connection(url: str | None, token: str | None, environ=os.environ) -> Connection:
    """Each setting from the flag, else the environment, else the configuration file."""
    path = config_path(environ)
    config = _read_config(path)
    url = url or environ.get("DCOS_REGISTRY_URL") or config.get("registry")
    token = token or environ.get("DCOS_REGISTRY_TOKEN") or config.get("token")
    if not url:
        raise RegistryError(
            ErrorCode.REGISTRY_NOT_CONFIGURED,
            f'No registry to talk to: give --registry URL, set DCOS_REGISTRY_URL, or write {{"registry": URL}} '
            f"into {path}.", config=str(path),
        )
    return Connection(url.rstrip("/"), token or None)


def _registry_error(response: requests.Response) -> RegistryError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body and "message" in body:
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        return RemoteError(body["code"], body["message"], response.status_code, **details)
    # Not the registry's own words: a proxy in front of it (Admin Router's 413 or 504) or not a registry at all.
    return RemoteError(f"http_{response.status_code}",
                       f"{response.request.method} {response.url} answered {response.status_code} {response.reason}.",
                       response.status_code)


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER_SECONDS) if value.isdigit() else 1.0


class _ChunkBody:
    """``length`` bytes of an open file from ``start``, read as requests sends them; ``on_read(position, data)``
    sees every piece."""

    def __init__(self, file, start: int, length: int, on_read: Callable[[int, bytes], object]):
        file.seek(start)
        self._file, self._position, self._left, self._on_read = file, start, length, on_read

    def __len__(self) -> int:
        return self._left

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._on_read(self._position, data)
        self._position += len(data)
        self._left -= len(data)
        return data


class _SequentialHash:
    """sha256 of a file fed by the pieces an upload reads, so each byte is read once.

    Pieces read again (a resent chunk) are not hashed twice; bytes the upload did not read in this
    process (sent before an interruption, or skipped after the registry answered another offset)
    are read from the file when the digest is asked for.
    """

    def __init__(self, file):
        self._file, self._copier = file, HashingCopier()

    @property
    def offset(self) -> int:
        """Where the hashed prefix of the file ends."""
        return self._copier.size

    def update_at(self, position: int, data: bytes) -> None:
        if position <= self.offset < position + len(data):
            self._copier.update(data[self.offset - position:])

    def catch_up(self, end: int) -> None:
        self._file.seek(self.offset)
        while self.offset < end:
            block = self._file.read(min(CHUNK_SIZE, end - self.offset))
            if not block:
                raise RegistryError(ErrorCode.BUNDLE_CHANGED, "The bundle file became shorter while it was being uploaded.")
            self._copier.update(block)

    def digest(self, size: int) -> str:
        self.catch_up(size)
        return self._copier.digest


def _missing_token(refusal: RegistryError) -> RegistryError:
    """The registry's ``not_authenticated`` to a caller that sent no token, in the words of this command."""
    path = config_path()
    return RemoteError(refusal.code, "This needs an API token, and none was given: give --token TOKEN, set "
                       f'DCOS_REGISTRY_TOKEN, or write {{"token": TOKEN}} into {path}.', refusal.status,
                       config=str(path), registry_message=refusal.message)


class Registry:
    def __init__(self, connection: Connection):
        self.url = connection.url
        self._http = requests.Session()
        self._http.headers["User-Agent"] = "dcos-registry"
        self._has_token = bool(connection.token)
        if connection.token:
            self._http.headers["Authorization"] = f"Bearer {connection.token}"

    def call(self, method: str, path: str, *, body: Callable[[], object] | None = None, **kwargs) -> requests.Response:
        """One API request; ``body`` makes a fresh request body for every attempt (a refused one may be sent again)."""
        retries = THROTTLE_RETRIES
        while True:
            try:
                response = self._http.request(method, self.url + path, data=body() if body else None,
                                              timeout=TIMEOUT, **kwargs)
            except requests.RequestException as error:
                raise RegistryError(ErrorCode.REGISTRY_UNREACHABLE, f"Cannot reach the registry at {self.url}: {error}",
                                  registry=self.url)
            passing = response.status_code == 429 or (response.status_code == 503 and "Retry-After" in response.headers)
            if passing and retries:
                retries -= 1
                time.sleep(_retry_after(response))
                continue
            if response.status_code >= 400:
                refusal = _registry_error(response)
                if refusal.code == ErrorCode.NOT_AUTHENTICATED and not self._has_token:
                    raise _missing_token(refusal)
                raise refusal
            return response

    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params={key: value for key, value in params.items() if value}).json()

    def every_page(self, path: str, limit: int | None = None, **params) -> list[dict]:
        """The results of a paginated list, page after page, up to ``limit``."""
        results, page = [], 1
        while limit is None or len(results) < limit:
            data = self.get(path, page=page, **params)
            results += data["results"]
            if not data.get("next"):
                break
            page += 1
        return results[:limit]

    # The catalogue

    def packages(self, search: str | None = None) -> list[dict]:
        return self.every_page("/api/v1/packages/", search=search)

    def version(self, name: str, version: str) -> dict:
        return self.get(_version_path(name, version))

    def remove_version(self, name: str, version: str) -> dict:
        return self.call("DELETE", _version_path(name, version)).json()

    def pin_default_version(self, name: str, version: str) -> dict:
        return self.call("PUT", _default_version_path(name), json={"version": version}).json()

    def unpin_default_version(self, name: str) -> dict:
        return self.call("DELETE", _default_version_path(name)).json()

    # Jobs

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/v1/jobs/{quote(job_id, safe='')}/")

    def jobs(self, state: str | None = None, package: str | None = None, limit: int | None = None) -> list[dict]:
        return self.every_page("/api/v1/jobs/", limit=limit, state=state, package=package)

    def watch_job(self, job: dict, interval: float = 0.5) -> Iterator[dict]:
        """The job as it is now, then again every ``interval`` seconds until it has finished."""
        yield job
        while job["state"] not in FINISHED_JOB_STATES:
            time.sleep(interval)
            job = self.job(job["id"])
            yield job

    # Long operations: exports and imports between registries

    def start_export(self, fields: dict) -> dict:
        return self.call("POST", "/api/v1/transfers/exports/", json=fields).json()

    def start_import(self, source: str, replace: bool) -> dict:
        return self.call("POST", "/api/v1/transfers/imports/", json={"from": source, "replace": replace}).json()

    def operation(self, run_id: int) -> dict:
        return self.get(f"/api/v1/operations/{int(run_id)}/")

    def wait_operation(self, run: dict, interval: float = 1.0) -> dict:
        """Poll the operation run until it has finished; a failed one raises the registry's error."""
        while run["finished_at"] is None:
            time.sleep(interval)
            run = self.operation(run["id"])
        if not run["succeeded"]:
            summary = run["summary"]
            raise RemoteError(summary.get("code", f"{run['kind']}_failed"), summary.get("error", "The run failed."),
                              run=run["url"])
        return run

    # Resumable uploads

    def open_upload(self, size: int, file_name: str, replace: bool) -> dict:
        fields = {"size": size, "file_name": file_name, "replace": replace}
        return self.call("POST", "/api/v1/uploads/", json=fields).json()

    def upload_session(self, session_id: str) -> dict | None:
        """The session, or None when the registry no longer knows it (collected, or another registry's)."""
        try:
            return self.get(_session_path(session_id))
        except RegistryError as error:
            if error.code in ("not_found", "upload_unknown"):
                return None
            raise

    def put_chunk(self, session_id: str, file, start: int, length: int, size: int,
                  on_read: Callable[[int, bytes], object]) -> int:
        """Send ``length`` bytes of ``file`` from ``start``; answer the registry's new offset."""
        headers = {"Content-Range": f"bytes {start}-{start + length - 1}/{size}",
                   "Content-Type": "application/octet-stream"}
        response = self.call("PUT", _session_path(session_id), headers=headers,
                             body=lambda: _ChunkBody(file, start, length, on_read))
        return response.json()["offset"]

    def commit_upload(self, session_id: str, digest: str) -> dict:
        return self.call("POST", _session_path(session_id) + "commit/", json={"sha256": digest}).json()


def _version_path(name: str, version: str) -> str:
    return f"/api/v1/packages/{quote(name, safe='')}/versions/{quote(version, safe='')}/"


def _default_version_path(name: str) -> str:
    return f"/api/v1/packages/{quote(name, safe='')}/default-version/"


def _session_path(session_id: str) -> str:
    return f"/api/v1/uploads/{quote(session_id, safe='')}/"


# A progress bar: tqdm's signature (desc, total, initial); the CLI passes tqdm itself, configured.
Bar = Callable[..., object]


def _no_bar(**kwargs):
    return tqdm(disable=True, **kwargs)


class UploadState:
    """Where the upload of one file to one registry is remembered until its job has ended, so that re-running
    `add` resumes the upload, or follows its job once it was committed."""

    def __init__(self, directory: Path, registry_url: str, path: Path, replace: bool):
        # The file is known by where it is, its size and its modification time: hashing it here would read
        # it once more. The registry checks the sha256 sent at commit in any case.
        stat = path.stat()
        identity = f"{registry_url}\n{path.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}\n{replace}"
        key = sha256_hex(identity.encode())
        self.file = directory / f"upload-{key[:32]}.json"

    def session_id(self) -> str | None:
        try:
            return json.loads(self.file.read_text())["session"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember(self, session: dict) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"session": session["id"], "url": session["url"]}))
        temporary.replace(self.file)

    def forget(self) -> None:
        self.file.unlink(missing_ok=True)


def upload_bundle(registry: Registry, path: Path, *, replace: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE,
                  state_dir: Path | None = None, bar: Bar = _no_bar,
                  follow: Callable[[dict], dict] | None = None) -> dict:
    """Upload a bundle through a resumable session and answer its ingest job, as ``follow`` leaves it if given.

    The state file naming the session is kept until ``follow`` answers a job that has ended: a run
    interrupted anywhere (sending chunks, waiting for the commit's answer, following the job) is
    taken up by the same command, which sends only the missing bytes or follows the committed
    upload's job, never a second upload.
    """
    state = UploadState(state_dir or state_directory(), registry.url, path, replace)
    job = _committed_job(registry, state, path, replace, chunk_size, bar)
    if follow is not None:
        job = follow(job)
    if job["state"] in FINISHED_JOB_STATES:
        state.forget()
    return job


def _committed_job(registry: Registry, state: UploadState, path: Path, replace: bool, chunk_size: int,
                   bar: Bar) -> dict:
    """The job of the remembered upload if it was committed; else the upload resumed or begun, and committed."""
    session = None
    if remembered := state.session_id():
        session = registry.upload_session(remembered)
    if session is not None and session["state"] == "committed" and session["job"]:
        return registry.job(session["job"].rstrip("/").rsplit("/", 1)[-1])
    if session is None or session["state"] != "open":
        session = registry.open_upload(path.stat().st_size, path.name, replace)
        state.remember(session)
    digest = _send_chunks(registry, session, path, chunk_size, bar)
    return registry.commit_upload(session["id"], digest)


def _send_chunks(registry: Registry, session: dict, path: Path, chunk_size: int, bar: Bar) -> str:
    """Send what the registry lacks, hashing as it goes; answer the whole file's sha256."""
    size, offset = session["size"], session["offset"]
    stop_after = int(os.environ.get(STOP_AFTER_CHUNKS_VARIABLE) or 0)
    sent = 0
    with open(path, "rb") as file, open(path, "rb") as rereads, \
            bar(desc="upload", total=size, initial=offset) as progress:
        hashed = _SequentialHash(rereads)
        # Bytes sent before an interruption: read once more, here, to hash them.
        hashed.catch_up(offset)

        def read(position: int, data: bytes) -> None:
            hashed.update_at(position, data)
            progress.update(len(data))

        while offset < size:
            length = min(chunk_size, size - offset)
            try:
                offset = registry.put_chunk(session["id"], file, offset, length, size, read)
            except RegistryError as error:
                # The registry holds other bytes than we thought (a lost answer): go on from its offset.
                if error.code != "range_mismatch" or error.details.get("offset") in (None, offset):
                    raise
                offset = error.details["offset"]
            # The bar counted what was read; the registry's offset is what counts.
            progress.n = offset
            progress.refresh()
            sent += 1
            if sent == stop_after:
                os.kill(os.getpid(), signal.SIGKILL)
        return hashed.digest(size)
