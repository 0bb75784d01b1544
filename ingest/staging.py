"""Where uploads wait for their job: written as they arrive (hashed on the way), readable by every worker.

One interface, two places, chosen by the blob store:

- local storage: files under STAGING_DIR, as web and workers share the data directory;
- S3 storage: objects under the bucket's ``_staging/`` prefix (``S3BlobStore.staged_*``), written as
  multipart uploads while the bytes arrive and read back by range, so webs and workers need no file
  system in common. A resumable upload's chunks may reach any web: the parts uploaded so far and the
  tail that does not fill a part yet (small objects of its own) are recorded on the ``UploadSession``.

A staged bundle is named by its *location*, kept in ``IngestJob.staging_path``: a path, or
``s3://<bucket>/<key>``. Stages only ``open`` it: a seekable file either way.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import uuid
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from django.conf import settings
from django.db import transaction

from blobs.drivers.s3 import S3BlobStore
from blobs.store import blob_store
from dcos_bundle.digests import CHUNK_SIZE, HashingCopier, Hashed
from dcos_bundle.errors import ErrorCode, RegistryError
from ingest.models import UploadSession
from ingest.stages.inspect import END_RECORD_SIGNATURE, LOCAL_HEADER_SIGNATURE

# How many first bytes of an upload decide whether it can be a bundle at all.
ZIP_START = len(LOCAL_HEADER_SIGNATURE)
# What those bytes can refuse an upload with, before the rest of it is read.
REFUSED_AT_THE_START = frozenset({ErrorCode.NOT_A_ZIP, ErrorCode.EMPTY_BUNDLE})


def too_large(size: int) -> RegistryError:
    return RegistryError(
        ErrorCode.BUNDLE_TOO_LARGE,
        f"The bundle is {size} bytes; this registry accepts bundles of at most {settings.MAX_BUNDLE_BYTES} bytes.",
        size=size, limit=settings.MAX_BUNDLE_BYTES,
    )


def check_zip_start(head: bytes) -> None:
    """Refuse an upload by its first bytes (the first few, while fewer have arrived).

    A bundle is a ZIP with members, and such a ZIP starts with a local file header; one that starts
    with its end record holds nothing.
    """
    head = head[:ZIP_START]
    if LOCAL_HEADER_SIGNATURE.startswith(head) or (len(head) < ZIP_START and END_RECORD_SIGNATURE.startswith(head)):
        return
    if head == END_RECORD_SIGNATURE:
        raise RegistryError(ErrorCode.EMPTY_BUNDLE, "The upload is an empty ZIP archive; a bundle holds at least its "
                            "metadata.json and manifest.json.")
    raise RegistryError(
        ErrorCode.NOT_A_ZIP,
        f"The upload is not a ZIP archive: it starts with the bytes {head.hex(' ')}, a ZIP with "
        f"{LOCAL_HEADER_SIGNATURE.hex(' ')} ('PK'). A bundle is the .dcos file dcos-registry build writes.",
        first_bytes=head.hex(),
    )


def read_zip_start(stream: BinaryIO, seen: bytes = b"", limit: int = ZIP_START) -> bytes:
    """Read the upload's first bytes on their own (at most ``limit``; ``seen`` arrived before) and refuse the
    upload if they cannot start a bundle, before anything more of it is read. Return the bytes read."""
    head = stream.read(min(ZIP_START - len(seen), limit))
    check_zip_start(seen + head)
    return head


def _chunk_of(stream: BinaryIO, written: int, length: int) -> bytes:
    """The next bytes of a chunk that announced ``length``; UPLOAD_INCOMPLETE if it breaks off first."""
    chunk = stream.read(min(CHUNK_SIZE, length - written))
    if not chunk:
        raise RegistryError(
            ErrorCode.UPLOAD_INCOMPLETE,
            f"The chunk ended after {written} of the {length} bytes its Content-Range announced.",
            received=written, declared=length,
        )
    return chunk


class _FileWriter:
    """A staged file written front to back; removed again on ``abort``."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._file = open(path, "wb")

    def write(self, data) -> None:
        # Handed on at once: a worker may read what arrived (``arrivals``) while the rest is written.
        self._file.write(data)
        self._file.flush()

    def commit(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class LocalStaging:
    """Files under STAGING_DIR: ``bundles/<job>.dcos``, and ``uploads/<session>.part`` (with its ``.lock``), which
    stays where it is when the upload is committed: workers may be reading the layers that arrived in it."""

    # Workers read what arrived before the rest of the file is written.
    readable_while_receiving = True

    def bundle_location(self, job_id: uuid.UUID) -> str:
        return str(settings.STAGING_DIR / "bundles" / f"{job_id}.dcos")

    def _upload_path(self, session_id) -> Path:
        return settings.STAGING_DIR / "uploads" / f"{session_id}.part"

    def writer(self, location: str) -> _FileWriter:
        return _FileWriter(Path(location))

    def begin_upload(self, session: UploadSession) -> None:
        pass  # the file appears with the first chunk

    @contextmanager
    def upload_lock(self, session_id) -> Iterator[None]:
        """One writer at a time per upload, whichever web process (on this machine) the chunk reached."""
        path = self._upload_path(session_id).with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def upload_location(self, session: UploadSession) -> str:
        return str(self._upload_path(session.pk))

    def append(self, session: UploadSession, stream: BinaryIO, offset: int, length: int,
               observe: Callable[[bytes], None]) -> int:
        path = self._upload_path(session.pk)
        with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as file:
            try:
                head = read_zip_start(stream, seen=file.read(offset), limit=length) if offset < ZIP_START else b""
                file.seek(offset)
                file.write(head)
                observe(head)
                written = len(head)
                while written < length:
                    chunk = _chunk_of(stream, written, length)
                    file.write(chunk)
                    observe(chunk)
                    written += len(chunk)
                file.flush()
                os.fsync(file.fileno())
            except BaseException:
                file.truncate(offset)
                raise
        return offset + written

    def commit_upload(self, session: UploadSession, job_id: uuid.UUID) -> str:
        location = self.upload_location(session)
        # Fresh, for GC's protection window: the last chunk may have come long ago.
        os.utime(location)
        self._upload_path(session.pk).with_suffix(".lock").unlink(missing_ok=True)
        return location

    def discard_upload(self, session: UploadSession) -> None:
        self._upload_path(session.pk).unlink(missing_ok=True)
        self._upload_path(session.pk).with_suffix(".lock").unlink(missing_ok=True)

    def open(self, location: str) -> BinaryIO:
        return open(location, "rb")

    def exists(self, location: str) -> bool:
        return bool(location) and Path(location).is_file()

    def adopt(self, location: str, job_id: uuid.UUID) -> str:
        target = self.bundle_location(job_id)
        os.utime(location)
        Path(location).rename(target)
        return target

    def remove(self, location: str) -> None:
        Path(location).unlink(missing_ok=True)

    def sweep(self, cutoff: float, in_use: set[str], open_uploads: set, dry_run: bool) -> list[str]:
        in_use = in_use | {str(path) for pk in open_uploads
                           for path in (self._upload_path(pk), self._upload_path(pk).with_suffix(".lock"))}
        swept = []
        for path in sorted(settings.STAGING_DIR.rglob("*")):
            if path.is_file() and str(path) not in in_use and path.stat().st_mtime < cutoff:
                swept.append(str(path))
                if not dry_run:
                    path.unlink(missing_ok=True)
        return swept


class ObjectStaging:
    """Objects under ``_staging/`` of an S3 store: ``bundles/<job>.dcos``; a resumable upload's
    ``uploads/<session>.dcos`` (a multipart upload until its commit) and the tail of it that does
    not fill a part yet, ``uploads/<session>/<start>`` (one object per chunk, each holding the bytes
    from ``start`` on)."""

    # A multipart upload's parts cannot be read before it is complete.
    readable_while_receiving = False

    def __init__(self, store: S3BlobStore):
        self.store = store
        self._root = f"s3://{store.bucket}/"

    def location(self, name: str) -> str:
        return f"{self._root}{self.store.staged_key(name)}"

    def name(self, location: str) -> str:
        name = self.store.staged_name(location.removeprefix(self._root)) if location.startswith(self._root) else None
        if name is None:
            raise ValueError(f"{location} is not staged in {self._root}.")
        return name

    def bundle_location(self, job_id: uuid.UUID) -> str:
        return self.location(f"bundles/{job_id}.dcos")

    def writer(self, location: str):
        return self.store.staged_writer(self.name(location))

    def _upload_name(self, session_id) -> str:
        return f"uploads/{session_id}.dcos"

    def _tail_name(self, session_id, start: int) -> str:
        return f"uploads/{session_id}/{start:020d}"

    def begin_upload(self, session: UploadSession) -> None:
        session.staged_upload_id = self.store.start_staged_upload(self._upload_name(session.pk))

    @contextmanager
    def upload_lock(self, session_id) -> Iterator[None]:
        """One writer at a time per upload, whichever web (on whichever machine) the chunk reached: the row lock."""
        with transaction.atomic():
            UploadSession.objects.select_for_update().filter(pk=session_id).first()
            yield

    def upload_location(self, session: UploadSession) -> str:
        return self.location(self._upload_name(session.pk))

    def append(self, session: UploadSession, stream: BinaryIO, offset: int, length: int,
               observe: Callable[[bytes], None]) -> int:
        """Send every full part at once; keep what is left (less than a part) as a tail object.

        The session's record of parts and tail changes only when the whole chunk arrived; a chunk
        that breaks off leaves at most parts past the recorded ones (replaced or left out on completion)
        and a tail object the next attempt writes again.
        """
        part_size = self.store.part_size
        parted = sum(part["Size"] for part in session.staged_parts)
        tail = list(session.staged_tail)  # starts of the tail objects, which hold bytes parted..offset
        tail_bytes = offset - parted
        parts, consumed = [], []
        buffer, buffer_start = bytearray(), offset

        def send_part() -> None:
            nonlocal tail, tail_bytes, buffer, buffer_start
            body = bytearray()
            for start in tail:
                body += self.store.read_staged(self._tail_name(session.pk, start))
            body += buffer
            size = len(body)
            number = len(session.staged_parts) + len(parts) + 1
            part = self.store.put_staged_part(self._upload_name(session.pk), session.staged_upload_id, number, body)
            parts.append({**part, "Size": size})
            consumed.extend(tail)
            tail, tail_bytes = [], 0
            buffer_start += len(buffer)
            buffer = bytearray()

        if offset < ZIP_START:
            seen = b"".join(self.store.read_staged(self._tail_name(session.pk, start)) for start in tail)
            pending = memoryview(read_zip_start(stream, seen=seen[:offset], limit=length))
        else:
            pending = memoryview(b"")
        received = len(pending)
        observe(pending)
        while True:
            while pending:
                room = part_size - tail_bytes - len(buffer)
                buffer += pending[:room]
                pending = pending[room:]
                if tail_bytes + len(buffer) == part_size:
                    send_part()
            if received == length:
                break
            pending = memoryview(_chunk_of(stream, received, length))
            observe(pending)
            received += len(pending)
        end = offset + length
        if end == session.size:
            if tail or buffer:
                send_part()  # the last part, which may be smaller
        elif buffer:
            self.store.put_staged(self._tail_name(session.pk, buffer_start), bytes(buffer))
            tail.append(buffer_start)
        session.staged_parts = [*session.staged_parts, *parts]
        session.staged_tail = tail
        # Tail objects now inside a part go once the session's new record is committed.
        transaction.on_commit(partial(self._remove_tail, session.pk, consumed), robust=True)
        return end

    def _remove_tail(self, session_id, starts: list[int]) -> None:
        for start in starts:
            self.store.delete_staged(self._tail_name(session_id, start))

    def commit_upload(self, session: UploadSession, job_id: uuid.UUID) -> str:
        parts = [{key: value for key, value in part.items() if key != "Size"} for part in session.staged_parts]
        self.store.complete_staged_upload(self._upload_name(session.pk), session.staged_upload_id, parts)
        return self.upload_location(session)

    def discard_upload(self, session: UploadSession) -> None:
        if session.staged_upload_id:
            self.store.abort_staged_upload(self._upload_name(session.pk), session.staged_upload_id)
        for name, _, _ in list(self.store.iter_staged(f"uploads/{session.pk}/")):
            self.store.delete_staged(name)

    def open(self, location: str) -> BinaryIO:
        return self.store.open_staged(self.name(location))

    def exists(self, location: str) -> bool:
        return bool(location) and self.store.staged_size(self.name(location)) is not None

    def adopt(self, location: str, job_id: uuid.UUID) -> str:
        """The bundle under the new job's name, written afresh (so GC's window starts again)."""
        target = self.bundle_location(job_id)
        self.store.copy_staged(self.name(location), self.name(target))
        self.store.delete_staged(self.name(location))
        return target

    def remove(self, location: str) -> None:
        self.store.delete_staged(self.name(location))

    def sweep(self, cutoff: float, in_use: set[str], open_uploads: set, dry_run: bool) -> list[str]:
        """Staged objects and unfinished multipart uploads that no unfinished job or open upload owns."""
        owned = {self.name(location) for location in in_use if location.startswith(self._root)}
        open_prefixes = tuple(f"uploads/{pk}/" for pk in open_uploads)
        owned |= {self._upload_name(pk) for pk in open_uploads}
        swept = []
        for name, _, written in list(self.store.iter_staged()):
            if name not in owned and not name.startswith(open_prefixes) and written < cutoff:
                swept.append(self.location(name))
                if not dry_run:
                    self.store.delete_staged(name)
        for name, upload_id, started in list(self.store.iter_staged_uploads()):
            if name not in owned and started < cutoff:
                swept.append(f"{self.location(name)} (unfinished upload)")
                if not dry_run:
                    self.store.abort_staged_upload(name, upload_id)
        return swept


def area() -> LocalStaging | ObjectStaging:
    """Where this registry stages uploads: in the object store when its blobs are in S3, on local disk otherwise."""
    store = blob_store()
    return ObjectStaging(store) if isinstance(store, S3BlobStore) else LocalStaging()


def bundle_location(job_id: uuid.UUID) -> str:
    return area().bundle_location(job_id)


def receive(stream: BinaryIO, location: str, declared_size: int | None,
            observe: Callable[[bytes], None] | None = None) -> Hashed:
    """Stage an upload at ``location``, hashing it; refuse it past MAX_BUNDLE_BYTES. Return its digest and size.

    ``observe``, if given, sees every byte in order, once it is written.
    """
    head = read_zip_start(stream)
    writer = area().writer(location)
    copier = HashingCopier()
    copier.update(head)
    try:
        for chunk in itertools.chain([head], copier.chunks(stream)):
            if copier.size > settings.MAX_BUNDLE_BYTES:
                raise too_large(copier.size)
            writer.write(chunk)
            if observe is not None:
                observe(chunk)
        if declared_size is not None and copier.size != declared_size:
            raise RegistryError(
                ErrorCode.UPLOAD_INCOMPLETE,
                f"The upload ended after {copier.size} of the {declared_size} bytes it announced.",
                received=copier.size, declared=declared_size,
            )
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return copier.hashed


def writer(location: str):
    """A writer of the staged bundle at ``location``: ``write`` as bytes arrive, then ``commit`` or ``abort``."""
    return area().writer(location)


def open_bundle(location: str) -> BinaryIO:
    """The staged bundle, as a seekable read-only file wherever it is staged."""
    return area().open(location)


def exists(location: str) -> bool:
    return area().exists(location)


def remove(location: str | None) -> None:
    if location:
        area().remove(location)
