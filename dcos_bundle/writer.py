"""Writes `.dcos` bundles atomically and without holding members in memory."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

from dcos_bundle.digests import CHUNK_SIZE
from dcos_bundle.errors import ErrorCode, RegistryError

# A fixed timestamp: the same inputs give byte-identical bundles.
MEMBER_DATE_TIME = (1980, 1, 1, 0, 0, 0)
MEMBER_MODE = (stat.S_IFREG | 0o644) << 16


class BundleExists(RegistryError):
    def __init__(self, path: Path):
        super().__init__(ErrorCode.OUTPUT_EXISTS, f"{path} already exists; refusing to overwrite it.", path=str(path))


def _new_file(directory: Path, prefix: str, suffix: str) -> Path:
    """A new, empty file with the permissions the umask gives any output file (mkstemp's would be 0600, and
    the bundle would keep them); O_EXCL makes sure the random name was no one else's."""
    path = directory / f"{prefix}{secrets.token_hex(8)}{suffix}"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return path


class BundleWriter:
    """A ZIP written to a temporary file beside ``path`` and linked into place by ``commit``.

    Use as a context manager: leaving it with an exception, or without calling ``commit``,
    removes the temporary file, so a half-written bundle never appears under its name.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists():
            raise BundleExists(self.path)
        self._tmp_path = _new_file(self.path.parent, f".{self.path.name}.", ".partial")
        self._zip = zipfile.ZipFile(self._tmp_path, "w", allowZip64=True)
        self._names: set[str] = set()
        self._committed = False

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._committed:
            self._zip.close()
            self._tmp_path.unlink(missing_ok=True)

    def _info(self, name: str, compress: bool, size: int | None = None) -> zipfile.ZipInfo:
        if name in self._names:
            raise ValueError(f"Member {name} is written twice.")
        self._names.add(name)
        info = zipfile.ZipInfo(name, date_time=MEMBER_DATE_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = MEMBER_MODE
        if size is not None:
            info.file_size = size
        return info

    def write_json(self, name: str, document) -> None:
        """A JSON member, deflated."""
        self.write_bytes(name, json.dumps(document, indent=2).encode() + b"\n", compress=True)

    def write_bytes(self, name: str, data: bytes, compress: bool) -> None:
        """A small member given whole (JSON documents and blobs)."""
        self._zip.writestr(self._info(name, compress=compress), data)

    def write_stream(self, name: str, stream: BinaryIO, size: int | None = None) -> None:
        """A member copied from a stream, stored: its content is already compressed."""
        info = self._info(name, compress=False, size=size)
        with self._zip.open(info, "w", force_zip64=size is None or size >= zipfile.ZIP64_LIMIT) as member:
            shutil.copyfileobj(stream, member, CHUNK_SIZE)

    def write_file(self, name: str, path: str | os.PathLike) -> None:
        with open(path, "rb") as file:
            self.write_stream(name, file, size=os.fstat(file.fileno()).st_size)

    def commit(self) -> Path:
        """Finish the ZIP, flush it to disk, and give it its name unless that name is taken."""
        self._zip.close()
        with open(self._tmp_path, "rb") as file:
            os.fsync(file.fileno())
        try:
            # link, not rename: it fails instead of replacing a bundle that appeared meanwhile.
            os.link(self._tmp_path, self.path)
        except FileExistsError:
            raise BundleExists(self.path) from None
        finally:
            self._tmp_path.unlink(missing_ok=True)
        self._committed = True
        return self.path
