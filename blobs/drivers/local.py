"""Blob store on a local (or mounted) filesystem.

Layout under the root: ``blobs/sha256/<first two hex>/<hex>`` for blobs and ``_tmp/`` for
writes in progress. The temporary file lives on the same filesystem so the final
``os.replace`` is atomic: a blob path either does not exist or holds verified bytes.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

from dcos_bundle.digests import digest_of, parse_digest
from dcos_bundle.streams import RangeReader

from .base import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    VerifyingCopier,
    check_range,
)


class LocalBlobStore(BlobStore):
    kind = "local"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self._blob_dir = self.root / "blobs" / "sha256"
        self._tmp_dir = self.root / "_tmp"
        self._blob_dir.mkdir(parents=True, exist_ok=True)
        self._tmp_dir.mkdir(parents=True, exist_ok=True)

    @property
    def identity(self) -> str:
        return f"local:{self.root}"

    def relative_path(self, digest: str) -> str:
        """Where the blob's file is under the root (a web server in front serves the root's files)."""
        hex_digest = parse_digest(digest)
        return f"blobs/sha256/{hex_digest[:2]}/{hex_digest}"

    def _path(self, digest: str) -> Path:
        return self.root / self.relative_path(digest)

    def put(self, stream, expected_digest=None, expected_size=None) -> BlobInfo:
        if expected_digest is not None:
            target = self._path(expected_digest)
            if target.exists():
                return BlobInfo(expected_digest, target.stat().st_size)
        copier = VerifyingCopier()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp_dir, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in copier.chunks(stream):
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            info = copier.verify(expected_digest, expected_size)
            target = self._path(info.digest)
            target.parent.mkdir(exist_ok=True)
            # Identical content under one name: a racing writer's replace is harmless.
            os.replace(tmp_name, target)
            self._fsync_dir(target.parent)
            return info
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def stat(self, digest: str) -> BlobInfo:
        try:
            return BlobInfo(digest, self._path(digest).stat().st_size)
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def open(self, digest: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        try:
            file = open(self._path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        try:
            size = os.fstat(file.fileno()).st_size
            count = check_range(digest, size, offset, length)
            file.seek(offset)
        except BaseException:
            file.close()
            raise
        if offset == 0 and count == size:
            return file
        return io.BufferedReader(RangeReader(file, offset, count))

    def delete(self, digest: str) -> bool:
        try:
            self._path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_blobs(self) -> Iterator[BlobInfo]:
        for shard in sorted(self._blob_dir.iterdir()):
            if not shard.is_dir():
                continue
            with os.scandir(shard) as entries:
                for entry in entries:
                    if entry.is_file() and len(entry.name) == 64:
                        yield BlobInfo(digest_of(entry.name), entry.stat().st_size)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def sweep_incomplete(self, older_than: float) -> int:
        removed = 0
        for leftover in self._tmp_dir.iterdir():
            try:
                if leftover.stat().st_mtime < older_than:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # finished (renamed) or removed meanwhile
        return removed

    def probe(self) -> None:
        payload = uuid.uuid4().bytes
        path = self._tmp_dir / f"probe-{uuid.uuid4().hex}"
        try:
            path.write_bytes(payload)
            if path.read_bytes() != payload:
                raise OSError(f"Read back different bytes from {path}.")
        finally:
            path.unlink(missing_ok=True)
