"""The repository views: the whole catalogue (``/repo``) and one cluster's (``/clusters/<name>/repo``)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_safe

from access.auth import WWW_AUTHENTICATE, acting_for, reader_of
from access.clusters import EVERYTHING, Visibility, dcos_version_of, find_cluster, visibility_of
from blobs.outages import DATABASE_OUTAGES
from dcos_bundle.errors import RegistryError

from . import cache
from .dcos_rules import dcos_version, highest_repo_version
from ..conditional import precondition_response
from .negotiation import (
    accepted_repo_versions,
    choose_repo_version,
    gzip_accepted,
    repo_content_type,
    servable_repo_versions,
)

logger = logging.getLogger(__name__)

ERROR_MEDIA_TYPE = "application/vnd.dcos.package.error+json;charset=utf-8;version=v1"
VARY = "Accept, Accept-Encoding, User-Agent"


def _error(status: int, error_type: str, message: str, **data) -> HttpResponse:
    body = json.dumps({"type": error_type, "message": message, "data": data})
    return HttpResponse(body, status=status, content_type=ERROR_MEDIA_TYPE)


def _refuse(status: int, code: str, message: str) -> HttpResponse:
    response = _error(status, "Unauthorized", message, reason=code)
    response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def _request_key(request) -> tuple:
    """Who asks (their credentials, hashed) for which repository, and what they take: what decides the answer."""
    credentials = request.headers.get("Authorization", "")
    return (request.path, hashlib.sha256(credentials.encode()).hexdigest() if credentials else "",
            request.headers.get("Accept", ""), request.headers.get("User-Agent", ""))


def _last_answer_while_the_database_is_away(view):
    """While the database is away, a request is answered as it was last time: Cosmos fails every request for
    packages if one of its repositories fails. A request never answered before gets 503 and Retry-After."""

    @functools.wraps(view)
    def serve(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DATABASE_OUTAGES:
            served = cache.repo_cache.served_before(_request_key(request))
            if served is None:
                logger.warning("/repo cannot read the catalogue, and has not answered this request before",
                               exc_info=True)
                response = _error(503, "ServiceUnavailable", "The package catalogue is unavailable; try again shortly.")
                response["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
                return response
            logger.warning("/repo answers as it did last time: the database is unavailable")
            return _respond(request, *served)

    return serve


@require_safe
@_last_answer_while_the_database_is_away
def repo(request):
    """The whole catalogue (the default cluster's repository); a cluster's token gets its cluster's."""
    reader, refused = reader_of(request, _refuse)
    if refused:
        return refused
    if reader.cluster is not None:
        return _serve_cluster(request, reader.cluster)
    return _serve(request, dcos_version(request.headers.get("User-Agent")), EVERYTHING)


@require_safe
@_last_answer_while_the_database_is_away
def cluster_repo(request, name: str):
    """What one cluster may see; its configured DC/OS version, when set, wins over what its Cosmos reports.

    Another cluster's repository does not exist for a cluster's token.
    """
    reader, refused = reader_of(request, _refuse)
    if refused:
        return refused
    try:
        cluster = find_cluster(name, reader.clusters())
    except RegistryError as error:
        return _error(404, "RepositoryNotFound", error.message, cluster=name)
    return _serve_cluster(request, cluster)


def _serve_cluster(request, cluster):
    acting_for(request, cluster.name)
    dcos = dcos_version_of(cluster) or dcos_version(request.headers.get("User-Agent"))
    return _serve(request, dcos, visibility_of(cluster))


def _serve(request, dcos: tuple[int, ...] | None, visibility: Visibility):
    highest = highest_repo_version(dcos)
    repo_version = choose_repo_version(accepted_repo_versions(request.headers.get("Accept")), highest)
    if repo_version is None:
        available = [repo_content_type(version) for version in reversed(servable_repo_versions(highest))]
        response = _error(
            406, "IncompatibleAcceptHeader",
            f"None of the media types in Accept [{request.headers.get('Accept', '')}] is served here; "
            f"/repo serves: {', '.join(available)}",
            specified=request.headers.get("Accept", ""), available=available)
        response["Vary"] = VARY
        return response
    return _respond(request, repo_version, cache.repo_cache.served(_request_key(request), repo_version, dcos,
                                                                   visibility))


def _respond(request, repo_version: str, rendered: cache.Rendered) -> HttpResponse:
    compressed = gzip_accepted(request.headers.get("Accept-Encoding"))
    # Strong ETags name one representation: the gzip one has its own.
    etag = rendered.etag[:-1] + '-gzip"' if compressed else rendered.etag
    headers = {"ETag": etag, "Vary": VARY, "Cache-Control": "no-cache"}
    if (not_modified := precondition_response(request, etag, headers)) is not None:
        return not_modified
    body = rendered.gzipped if compressed else rendered.body
    if compressed:
        headers["Content-Encoding"] = "gzip"
    response = HttpResponse(b"" if request.method == "HEAD" else body, headers=headers,
                            content_type=repo_content_type(repo_version))
    response["Content-Length"] = str(len(body))
    return response
