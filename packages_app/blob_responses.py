"""Serving a stored blob over HTTP, with a strong ETag (conditional requests), HEAD and single ranges.

The view decides (who may read it, 304/412, 416) and, for a GET, hands the bytes to whoever sends them best: S3
itself (307 to a presigned URL, S3_REDIRECT_DOWNLOADS), or the run command's nginx for local storage
(X-Accel-Redirect to its internal location, SERVED_BY_NGINX); otherwise they stream from here.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from blobs.drivers import LocalBlobStore
from blobs.store import blob_store
from dcos_bundle.digests import CHUNK_SIZE

from .conditional import precondition_response

_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# nginx's internal location of the local blob store's files (registry_site/nginx.conf.template): reached only by
# an X-Accel-Redirect answer of the registry.
ACCEL_BLOB_LOCATION = "/_registry_blobs/"


class RangeNotSatisfiable(Exception):
    pass


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(offset, length) of a single ``bytes=`` range, or None to send the whole blob.

    Other units and several ranges are ignored (the whole blob is sent), as RFC 9110 allows;
    a malformed or unsatisfiable single range raises RangeNotSatisfiable.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    match = _SINGLE_RANGE.match(header.replace(" ", ""))
    if not match or match.groups() == ("", ""):
        raise RangeNotSatisfiable
    first, last = match.groups()
    if first == "":
        # A suffix: the last N bytes.
        suffix = _at_most(last, size)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return size - suffix, suffix
    offset = _at_most(first, size)
    end = _at_most(last, size - 1) if last else size - 1
    if offset >= size or end < offset:
        raise RangeNotSatisfiable
    return offset, end - offset + 1


def _at_most(digits: str, bound: int) -> int:
    """The number ``digits`` write, or ``bound`` if it is larger: a position of thousands of digits is past any
    blob, and is never converted (Python refuses int() of more than 4,300 digits)."""
    digits = digits.lstrip("0") or "0"
    return bound if len(digits) > len(str(bound)) else min(int(digits), bound)


class BlobChunks:
    """A blob stream read in chunks; the response closes it when it is done, also on a broken connection."""

    def __init__(self, stream):
        self._stream = stream

    def __iter__(self):
        return iter(functools.partial(self._stream.read, CHUNK_SIZE), b"")

    def close(self) -> None:
        self._stream.close()


def _plain_unsatisfiable(size: int) -> HttpResponse:
    return HttpResponse(status=416)


def handed_over(digest: str, content_type: str, headers: dict) -> HttpResponse | None:
    """The answer to a GET whose bytes another server sends, or None to stream them from here."""
    store = blob_store()
    if settings.S3_REDIRECT_DOWNLOADS and (location := store.download_url(
            digest, settings.S3_REDIRECT_SECONDS, content_type, headers.get("Content-Disposition"))):
        # The client sends its Range to S3; the URL expires, so the redirect is never cached.
        response = HttpResponse(status=307)
        response["Location"] = location
        return response
    if settings.SERVED_BY_NGINX and isinstance(store, LocalBlobStore):
        store.stat(digest)  # BlobNotFound is answered by the view, not by nginx
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = ACCEL_BLOB_LOCATION + store.relative_path(digest)
        return response
    return None


def blob_response(
    request,
    digest: str,
    size: int,
    content_type: str,
    headers: dict | None = None,
    unsatisfiable: Callable[[int], HttpResponse] = _plain_unsatisfiable,
):
    """The blob (or the asked range of it), 304/412 to a conditional request, or ``unsatisfiable(size)``.

    ``headers`` are added to every answer (but a redirect, whose URL expires, is never cached).
    BlobNotFound (a referenced blob gone from storage) is left to the caller to word.
    """
    etag = f'"{digest}"'
    if (response := precondition_response(request, etag)) is None:
        try:
            span = requested_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            response = unsatisfiable(size)
            response["Content-Range"] = f"bytes */{size}"
        else:
            response = handed_over(digest, content_type, headers or {}) if request.method == "GET" else None
            if response is None:
                offset, length = span or (0, size)
                status = 206 if span else 200
                if request.method == "HEAD":
                    response = HttpResponse(status=status)
                else:
                    response = StreamingHttpResponse(BlobChunks(blob_store().open(digest, offset, length)),
                                                     status=status)
                response["Content-Length"] = str(length)
                response["Content-Type"] = content_type
                if span:
                    response["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
    response["ETag"] = etag
    if "X-Accel-Redirect" not in response:  # nginx says it of the file it sends
        response["Accept-Ranges"] = "bytes"
    for name, value in (headers or {}).items():
        response[name] = value
    if response.status_code == 307:
        response["Cache-Control"] = "no-store"
    return response
