"""Conditional requests (If-None-Match, If-Match) of everything the catalogue serves: Django's own rules.

``/repo``, ``/resource`` and the ``/v2`` manifests and blobs all answer through
``django.utils.cache.get_conditional_response``: If-None-Match compares weakly (``W/"x"``
matches ``"x"``), takes a list and ``*``; a failed If-Match is 412. No Last-Modified is served,
so If-Modified-Since changes nothing.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.cache import get_conditional_response


def precondition_response(request, etag: str, headers: dict | None = None) -> HttpResponse | None:
    """304 Not Modified or 412 Precondition Failed for the representation named ``etag``; None: serve it.

    The 304 carries the ETag and ``headers`` (Vary, Cache-Control...), as the full answer would.
    """
    response = get_conditional_response(request, etag=etag)
    if response is not None:
        response["ETag"] = etag
        for name, value in (headers or {}).items():
            response[name] = value
    return response
