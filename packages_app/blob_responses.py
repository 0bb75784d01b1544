"""Serving a stored blob over HTTP: streamed, with a strong ETag, HEAD, and single byte ranges."""

from __future__ import annotations

import re

from django.http import HttpResponse, StreamingHttpResponse

from ingest.blobstore.base import CHUNK_SIZE
from ingest.storage import blob_store

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int):
        super().__init__(f"The range asked for is outside the {size} bytes of the blob.")
        self.size = size


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(offset, length) of a single ``Range: bytes=`` request, None for the whole blob.

    Multiple ranges and malformed headers are served whole, as RFC 9110 allows.
    """
    match = _RANGE.match(header or "")
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        length = min(int(last), size)
        if length == 0:
            raise RangeNotSatisfiable(size)
        return size - length, length
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(size)
    return start, end - start + 1


def _chunks(stream):
    with stream:
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk


def blob_response(request, digest: str, size: int, content_type: str, headers: dict | None = None):
    """The blob (or the asked range of it), or 304/416; ``headers`` are added to every answer."""
    etag = f'"{digest}"'
    base = {"ETag": etag, "Accept-Ranges": "bytes", **(headers or {})}
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        try:
            span = requested_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            span = None
        else:
            offset, length = span or (0, size)
            if request.method == "HEAD":
                response = HttpResponse(status=206 if span else 200)
            else:
                # BlobNotFound (a referenced blob gone from storage) is left to the caller to word.
                stream = blob_store().open(digest, offset, length)
                response = StreamingHttpResponse(_chunks(stream), status=206 if span else 200)
            response["Content-Length"] = str(length)
            response["Content-Type"] = content_type
            if span:
                response["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
    for name, value in base.items():
        response[name] = value
    return response
