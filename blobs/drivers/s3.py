"""Blob store in an S3 bucket (AWS or any S3-compatible server), via boto3.

Layout under the prefix: ``blobs/sha256/<first two hex>/<hex>`` for blobs,
``_uploads/<uuid>`` for multipart uploads whose digest was not known in advance,
``_probe/`` for health-check scratch objects and ``_staging/`` for uploaded bundles waiting for
their ingest (written as multipart uploads while they arrive, read back by range). A blob key is only ever written with
verified bytes: small blobs are hashed in memory before a single PUT, large ones are
uploaded in parts and the multipart upload is completed only after the digest matched.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import BinaryIO, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as EndpointConnectionFailed

from dcos_bundle.digests import digest_of, parse_digest

from .base import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    BlobStoreUnavailable,
    VerifyingCopier,
    check_range,
)

# S3 rejects multipart parts under 5 MiB (except the last) and more than 10,000 parts.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
PART_CHECKSUM = "CRC32"
_HEX_RE = re.compile(r"[0-9a-f]{64}")
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES


def _is_outage(error: Exception) -> bool:
    """Whether S3 did not answer (no connection, a timeout, a cut stream, a 5xx) rather than refuse the request.

    Refusals (403, 404, a missing bucket) and configuration errors (no credentials) are not outages:
    asking again would get the same answer.
    """
    if isinstance(error, ClientError):
        return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return isinstance(error, (EndpointConnectionFailed, HTTPClientError, IncompleteReadError))


@contextlib.contextmanager
def _outages_as_unavailable(operation: str):
    """An outage of S3 raised as BlobStoreUnavailable, which callers retry later (also usable as a decorator)."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        if _is_outage(error):
            raise BlobStoreUnavailable(operation) from error
        raise


class _BodyReader(io.RawIOBase):
    """Adapts a botocore StreamingBody to a standard raw stream (buffered by the caller)."""

    def __init__(self, body):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with _outages_as_unavailable("read"):
            return self._body.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _RangedObject(io.RawIOBase):
    """A seekable, read-only view of one object, read with ranged GETs of ``window`` bytes at a time.

    Reading on from where the last read stopped continues the open response; a seek elsewhere drops
    it and the next read asks for a new range, so sequential readers (zipfile) cost one GET per window.
    """

    def __init__(self, client, bucket: str, key: str, size: int, window: int):
        self._client, self._bucket, self._key = client, bucket, key
        self._size, self._window = size, window
        self._position = 0
        self._body = None
        self._body_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._position:
            self._drop_body()
            self._position = position
        return position

    def readinto(self, buffer) -> int:
        if self._position >= self._size or len(buffer) == 0:
            return 0
        if self._body is None:
            self._body_end = min(self._position + max(self._window, len(buffer)), self._size)
            with _outages_as_unavailable("read"):
                self._body = self._client.get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{self._body_end - 1}"
                )["Body"]
        wanted = min(len(buffer), self._body_end - self._position)
        with _outages_as_unavailable("read"):
            count = self._body.readinto(memoryview(buffer)[:wanted])
        if count == 0:
            # The object was cut short under the reader (it is replaced or gone): never a silent EOF.
            raise BlobStoreUnavailable("read")
        self._position += count
        if self._position == self._body_end:
            self._drop_body()
        return count

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class StagedWriter:
    """Bytes written as they arrive into one staged object: a multipart upload of ``part_size`` parts.

    A few parts travel at once, as in ``put``; memory stays at ``parts_in_flight`` + 1 parts because
    a write waits for the oldest part once that many are under way. Nothing is visible before
    ``commit``; ``abort`` (to be called after any error) leaves nothing behind.
    """

    def __init__(self, store: S3BlobStore, name: str):
        self._store, self._name = store, name
        self._upload_id = store.start_staged_upload(name)
        self._parts: list[dict] = []
        self._in_flight: deque[Future] = deque()
        self._numbers = itertools.count(1)
        self._buffer = bytearray()
        self._pool = ThreadPoolExecutor(max_workers=store.parts_in_flight, thread_name_prefix="s3-staged-part")

    def write(self, data) -> None:
        self._buffer += data
        while len(self._buffer) >= self._store.part_size:
            part = self._buffer[: self._store.part_size]
            del self._buffer[: self._store.part_size]
            self._send(part)

    def _send(self, part: bytearray) -> None:
        if len(self._in_flight) >= self._store.parts_in_flight:
            self._parts.append(self._in_flight.popleft().result())
        self._in_flight.append(self._pool.submit(
            self._store.put_staged_part, self._name, self._upload_id, next(self._numbers), part))

    def commit(self) -> None:
        if not (self._buffer or self._parts or self._in_flight):
            # An empty upload (inspection refuses it later): a multipart upload needs a part, an object does not.
            self.abort()
            self._store.put_staged(self._name, b"")
            return
        if self._buffer:
            self._send(self._buffer)  # the last part, which may be short
            self._buffer = bytearray()
        while self._in_flight:
            self._parts.append(self._in_flight.popleft().result())
        self._pool.shutdown()
        self._store.complete_staged_upload(self._name, self._upload_id, self._parts)

    def abort(self) -> None:
        for future in self._in_flight:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._in_flight.clear()
        self._buffer = bytearray()
        self._store.abort_staged_upload(self._name, self._upload_id)


class S3BlobStore(BlobStore):
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
        part_size: int = 8 * 1024 * 1024,
        parts_in_flight: int = 3,
        list_page_size: int = 1000,
        public_endpoint_url: str | None = None,
        client=None,
    ):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (the S3 minimum).")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight
        self.list_page_size = list_page_size
        root = f"{self.prefix}/" if self.prefix else ""
        self._blob_prefix = f"{root}blobs/sha256/"
        self._upload_prefix = f"{root}_uploads/"
        self._probe_prefix = f"{root}_probe/"
        self._staging_prefix = f"{root}_staging/"
        self.public_endpoint_url = public_endpoint_url
        signing_client = None
        if client is None:
            config = Config(
                # An unreachable server is known within seconds, not the default minute per attempt.
                connect_timeout=10,
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                # Attempts per request: boto3's own AWS_MAX_ATTEMPTS (default 3). Past them the store is
                # unavailable, and what called it retries later (ingest tasks) or answers 503 (the web).
                retries={"mode": "standard"},
            )
            # A private session: boto3's default session is not safe to share across threads.
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region or "us-east-1",
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=config,
            )
            if public_endpoint_url and public_endpoint_url != endpoint_url:
                # Signs URLs only, sends nothing: a presigned URL names (and signs) the host clients reach.
                signing_client = boto3.session.Session().client(
                    "s3", endpoint_url=public_endpoint_url, region_name=region or "us-east-1",
                    aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, config=config,
                )
        self._client = client
        self._signing_client = signing_client or client

    @property
    def client(self):
        """The boto3 client, for tools that keep other objects beside the blobs (backups)."""
        return self._client

    @property
    def identity(self) -> str:
        return f"s3:{self.endpoint_url or 'aws'}/{self.bucket}/{self.prefix}"

    def _key(self, digest: str) -> str:
        hex_digest = parse_digest(digest)
        return f"{self._blob_prefix}{hex_digest[:2]}/{hex_digest}"

    @_outages_as_unavailable("put")
    def put(self, stream, expected_digest=None, expected_size=None) -> BlobInfo:
        if expected_digest is not None:
            try:
                return self.stat(expected_digest)
            except BlobNotFound:
                pass
        copier = VerifyingCopier()
        parts = self._parts(copier.chunks(stream))
        body, last = next(parts)
        if last:
            # The whole blob fits in one part: verify it before anything is written.
            info = copier.verify(expected_digest, expected_size)
            self._client.put_object(Bucket=self.bucket, Key=self._key(info.digest), Body=body)
            return info
        parts = itertools.chain([(body, last)], parts)
        if expected_digest is not None:
            # Parts go straight to the final key; the object appears only on completion.
            return self._upload(self._key(expected_digest), parts, copier, expected_digest, expected_size)
        # The final key is known only once everything is hashed: upload aside, then copy.
        temp_key = f"{self._upload_prefix}{uuid.uuid4().hex}"
        info = self._upload(temp_key, parts, copier, None, expected_size)
        try:
            if not self.exists(info.digest):
                self._client.copy(
                    CopySource={"Bucket": self.bucket, "Key": temp_key},
                    Bucket=self.bucket,
                    Key=self._key(info.digest),
                )
            return info
        finally:
            self._client.delete_object(Bucket=self.bucket, Key=temp_key)

    def _parts(self, chunks: Iterator[bytes]) -> Iterator[tuple[bytearray, bool]]:
        """Group chunks into (part, is_last) pairs; every part but the last is exactly part_size.

        A part is only handed out once a byte beyond it has been read, so the caller knows
        whether it is the last one. Memory stays at about two parts.
        """
        buffer = bytearray()
        for chunk in chunks:
            buffer += chunk
            while len(buffer) > self.part_size:
                part, buffer = buffer[: self.part_size], buffer[self.part_size :]
                yield part, False
        yield buffer, True

    def _upload(self, key, parts, copier, expected_digest, expected_size) -> BlobInfo:
        # As boto3's managed upload does: S3 refuses parts whose checksum algorithm was not
        # named when the upload was created, and wants each part's checksum on completion.
        upload_id = self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ChecksumAlgorithm=PART_CHECKSUM
        )["UploadId"]
        in_flight: deque[Future] = deque()
        completed = []
        # A few parts travel at once (S3 servers answer faster in parallel); memory stays at
        # parts_in_flight + 1 parts because reading waits for the oldest upload.
        with ThreadPoolExecutor(max_workers=self.parts_in_flight, thread_name_prefix="s3-part") as pool:
            try:
                for number, (body, _) in enumerate(parts, start=1):
                    if number > MAX_PARTS:
                        raise ValueError(
                            f"Blob exceeds {MAX_PARTS} parts of {self.part_size} bytes; raise part_size."
                        )
                    if len(in_flight) >= self.parts_in_flight:
                        completed.append(in_flight.popleft().result())
                    in_flight.append(pool.submit(self._upload_part, key, upload_id, number, body))
                while in_flight:
                    completed.append(in_flight.popleft().result())
                info = copier.verify(expected_digest, expected_size)
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": completed}
                )
                return info
            except BaseException:
                for future in in_flight:
                    future.cancel()
                wait(in_flight)
                # Keep the original error; a failed abort leaves only an invisible pending upload.
                with contextlib.suppress(Exception):
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                raise

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytearray) -> dict:
        response = self._client.upload_part(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=PART_CHECKSUM,
        )
        # Free the part now: the caller's peeked first part would otherwise stay alive.
        body.clear()
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if f"Checksum{PART_CHECKSUM}" in response:
            part[f"Checksum{PART_CHECKSUM}"] = response[f"Checksum{PART_CHECKSUM}"]
        return part

    @_outages_as_unavailable("stat")
    def stat(self, digest: str) -> BlobInfo:
        key = self._key(digest)
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_not_found(error):
                raise BlobNotFound(digest) from None
            raise
        return BlobInfo(digest, response["ContentLength"])

    @_outages_as_unavailable("open")
    def open(self, digest: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        size = self.stat(digest).size
        count = check_range(digest, size, offset, length)
        if count == 0:
            # S3 cannot express an empty range, and an empty object needs no request.
            return io.BytesIO()
        request = {"Bucket": self.bucket, "Key": self._key(digest)}
        if count != size:
            request["Range"] = f"bytes={offset}-{offset + count - 1}"
        try:
            response = self._client.get_object(**request)
        except ClientError as error:
            if _is_not_found(error):
                raise BlobNotFound(digest) from None
            raise
        return io.BufferedReader(_BodyReader(response["Body"]))

    def download_url(self, digest: str, expires_in: int, content_type: str | None = None,
                     content_disposition: str | None = None) -> str:
        """A presigned GET of the blob for ``expires_in`` seconds, on the public endpoint: clients fetch the bytes
        from S3 (with their own Range), the registry carries none. S3 answers with the given content type and
        disposition. Computed locally, without a request; a missing blob is S3's 404 to the client."""
        params = {"Bucket": self.bucket, "Key": self._key(digest)}
        if content_type:
            params["ResponseContentType"] = content_type
        if content_disposition:
            params["ResponseContentDisposition"] = content_disposition
        return self._signing_client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    @_outages_as_unavailable("delete")
    def delete(self, digest: str) -> bool:
        # DeleteObject succeeds whether or not the key exists, so ask first.
        if not self.exists(digest):
            return False
        self._client.delete_object(Bucket=self.bucket, Key=self._key(digest))
        return True

    def iter_blobs(self) -> Iterator[BlobInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self._blob_prefix,
            PaginationConfig={"PageSize": self.list_page_size},
        )
        with _outages_as_unavailable("iter_blobs"):
            for page in pages:
                for item in page.get("Contents", []):
                    shard, _, name = item["Key"][len(self._blob_prefix) :].partition("/")
                    if _HEX_RE.fullmatch(name) and shard == name[:2]:
                        yield BlobInfo(digest_of(name), item["Size"])

    def free_bytes(self) -> None:
        # A bucket has no capacity limit to report.
        return None

    @_outages_as_unavailable("sweep_incomplete")
    def sweep_incomplete(self, older_than: float) -> int:
        removed = 0
        uploads = self._client.get_paginator("list_multipart_uploads")
        for page in uploads.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""):
            for upload in page.get("Uploads", []):
                # Staged uploads belong to upload sessions and jobs: ingest's GC decides about them.
                if upload["Key"].startswith(self._staging_prefix):
                    continue
                if upload["Initiated"].timestamp() < older_than:
                    with contextlib.suppress(ClientError):
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        objects = self._client.get_paginator("list_objects_v2")
        for page in objects.paginate(Bucket=self.bucket, Prefix=self._upload_prefix):
            for item in page.get("Contents", []):
                if item["LastModified"].timestamp() < older_than:
                    self._client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    removed += 1
        return removed

    # Staging: bundles waiting for their ingest, named relative to ``_staging/``. Every web and worker
    # reaches them, so none needs a file system shared with the others.

    def staged_key(self, name: str) -> str:
        return f"{self._staging_prefix}{name}"

    def staged_name(self, key: str) -> str | None:
        """The staging name of ``key``, None if the key is not under the staging prefix."""
        return key[len(self._staging_prefix):] if key.startswith(self._staging_prefix) else None

    @_outages_as_unavailable("stage")
    def start_staged_upload(self, name: str) -> str:
        """A multipart upload to the staged object ``name``; its upload id."""
        return self._client.create_multipart_upload(
            Bucket=self.bucket, Key=self.staged_key(name), ChecksumAlgorithm=PART_CHECKSUM
        )["UploadId"]

    @_outages_as_unavailable("stage")
    def put_staged_part(self, name: str, upload_id: str, number: int, body: bytearray) -> dict:
        """Upload part ``number`` (every part but the last at least MIN_PART_SIZE); what completing needs of it."""
        return self._upload_part(self.staged_key(name), upload_id, number, body)

    @_outages_as_unavailable("stage")
    def complete_staged_upload(self, name: str, upload_id: str, parts: list[dict]) -> None:
        self._client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.staged_key(name), UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    @_outages_as_unavailable("stage")
    def abort_staged_upload(self, name: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.staged_key(name), UploadId=upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _NOT_FOUND_CODES | {"NoSuchUpload"}:
                raise

    def staged_writer(self, name: str) -> StagedWriter:
        return StagedWriter(self, name)

    @_outages_as_unavailable("stage")
    def put_staged(self, name: str, body: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self.staged_key(name), Body=body)

    @_outages_as_unavailable("stage")
    def read_staged(self, name: str) -> bytes:
        """A small staged object whole (an upload's tail, less than a part)."""
        return self._client.get_object(Bucket=self.bucket, Key=self.staged_key(name))["Body"].read()

    @_outages_as_unavailable("stage")
    def staged_size(self, name: str) -> int | None:
        """The staged object's size, None if there is none."""
        try:
            return self._client.head_object(Bucket=self.bucket, Key=self.staged_key(name))["ContentLength"]
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise

    def open_staged(self, name: str, read_ahead: int | None = None) -> BinaryIO:
        """The staged object as a seekable read-only file, read by range (``read_ahead`` bytes per GET)."""
        size = self.staged_size(name)
        if size is None:
            raise FileNotFoundError(f"No staged object {name}.")
        raw = _RangedObject(self._client, self.bucket, self.staged_key(name), size, read_ahead or self.part_size)
        return io.BufferedReader(raw, buffer_size=256 * 1024)

    @_outages_as_unavailable("stage")
    def copy_staged(self, source: str, target: str) -> None:
        """A server-side copy (multipart for large objects); FileNotFoundError if ``source`` is gone."""
        try:
            self._client.copy(
                CopySource={"Bucket": self.bucket, "Key": self.staged_key(source)},
                Bucket=self.bucket, Key=self.staged_key(target),
            )
        except ClientError as error:
            if _is_not_found(error):
                raise FileNotFoundError(f"No staged object {source}.") from None
            raise

    @_outages_as_unavailable("stage")
    def delete_staged(self, name: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.staged_key(name))

    def iter_staged(self, under: str = "") -> Iterator[tuple[str, int, float]]:
        """Every staged object (under ``under``): its name, size and when it was last written (epoch seconds)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.staged_key(under), PaginationConfig={"PageSize": self.list_page_size}
        )
        with _outages_as_unavailable("iter_staged"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield self.staged_name(item["Key"]), item["Size"], item["LastModified"].timestamp()

    def iter_staged_uploads(self) -> Iterator[tuple[str, str, float]]:
        """Every unfinished multipart upload to a staged object: its name, upload id and when it started."""
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._staging_prefix
        )
        with _outages_as_unavailable("iter_staged"):
            for page in pages:
                for upload in page.get("Uploads", []):
                    yield self.staged_name(upload["Key"]), upload["UploadId"], upload["Initiated"].timestamp()

    @_outages_as_unavailable("probe")
    def probe(self) -> None:
        key = f"{self._probe_prefix}{uuid.uuid4().hex}"
        payload = os.urandom(32)
        self._client.put_object(Bucket=self.bucket, Key=key, Body=payload)
        try:
            read_back = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            if read_back != payload:
                raise OSError(f"Read back different bytes from s3://{self.bucket}/{key}.")
        finally:
            self._client.delete_object(Bucket=self.bucket, Key=key)
