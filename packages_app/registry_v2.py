"""The Docker Registry HTTP API v2, read side: what dockerd, containerd and skopeo pull from.

Repositories and tags are those of the ORIGINAL references of the published images, looked up in
the index of published images (``PublishedImage``), so an image that a bundle carried as
``mesosphere/kafka:2.3.0`` is pulled as ``<registry>/mesosphere/kafka:2.3.0`` or by its manifest
digest. As on Docker Hub, a single name and its ``library/`` spelling are one repository
(``nginx:1.25`` is pulled as ``nginx:1.25`` or ``library/nginx:1.25``). Only blobs of published
versions are served, and only under a repository whose images use them. Images enter only inside
bundles: every write answers 405 UNSUPPORTED.
"""

from __future__ import annotations

import functools
import logging
import re
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpResponse, JsonResponse
from django.urls import path, re_path, register_converter
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from access.auth import presented_token, reader_of
from access.clusters import Visibility
from blobs.drivers import BlobNotFound
from blobs.outages import OUTAGES, unavailable_component
from blobs.store import blob_store
from dcos_bundle.digests import InvalidDigest, parse_digest
from packages_app.models import PackageVersion, PublishedImage, VersionBlob

from .blob_responses import blob_response
from .conditional import precondition_response
from .coordinates import docker_hub_names

logger = logging.getLogger(__name__)

API_VERSION_HEADER = "Docker-Distribution-API-Version"
API_VERSION = "registry/2.0"
IMAGE_ROLES = (VersionBlob.Role.MANIFEST, VersionBlob.Role.CONFIG, VersionBlob.Role.LAYER)
READ_ONLY_MESSAGE = (
    "This registry is read-only: images enter it only inside .dcos bundles uploaded to /api/v1/bundles/."
)
# How long a client may keep the token before asking again (the token itself may be revoked any time).
TOKEN_LIFETIME_SECONDS = 3600
# What Docker allows a whole name (reference.NameTotalLengthMax); longer names are NAME_INVALID.
MAX_NAME_LENGTH = 255


class RepositoryName:
    """A repository name as the distribution spec allows it: lower-case path components."""

    regex = r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"

    def to_python(self, value: str) -> str:
        if len(value) > MAX_NAME_LENGTH:
            # No match: the request falls through to unknown_endpoint, which answers NAME_INVALID.
            raise ValueError(value)
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(RepositoryName, "repository")


def repository_images(name: str) -> QuerySet[PublishedImage]:
    """The published images of repository ``name``, under either of its Docker Hub names."""
    return PublishedImage.objects.filter(repository__in=docker_hub_names(name))


def with_blob(images: QuerySet[PublishedImage], digest: str) -> QuerySet[PublishedImage]:
    """Those of ``images`` whose manifest, config or one of whose layers is blob ``digest``, with its size
    (``blob_size``)."""
    uses = VersionBlob.objects.filter(version_id=OuterRef("version_id"), name=OuterRef("reference"), blob_id=digest,
                                      role__in=IMAGE_ROLES)
    return images.annotate(blob_size=Subquery(uses.values("blob__size")[:1])).filter(blob_size__isnull=False)


def visible(images: QuerySet[PublishedImage], visibility: Visibility) -> list[PublishedImage]:
    """Those of ``images`` in versions the caller may see, the most recently published version first: the image
    a tag that several versions carry resolves to.

    A repository holds few images, so a cluster's rules are checked on them here rather than in the query.
    """
    images = images.select_related("manifest").annotate(
        package_name=F("version__package__name"), version_number=F("version__version"),
    ).order_by("-version__published_at", "-version_id")
    return [image for image in images if visibility.allows(image.package_name, image.version_number)]


def v2_error(status: int, code: str, message: str, **detail) -> JsonResponse:
    return JsonResponse({"errors": [{"code": code, "message": message, "detail": detail}]}, status=status)


def name_unknown(name: str) -> JsonResponse:
    return v2_error(404, "NAME_UNKNOWN", f"No published image is in repository {name}.", name=name)


def manifest_unknown(name: str, reference: str) -> JsonResponse:
    return v2_error(404, "MANIFEST_UNKNOWN", f"Repository {name} has no published manifest {reference}.",
                    name=name, reference=reference)


def blob_unknown(name: str, digest: str) -> JsonResponse:
    return v2_error(404, "BLOB_UNKNOWN", f"Repository {name} has no published blob {digest}.", name=name, digest=digest)


def digest_invalid(digest: str) -> JsonResponse:
    return v2_error(400, "DIGEST_INVALID", f"{digest!r} is not a digest of the form sha256:<64 lower-case hex>.",
                    digest=digest)


def unauthorized(request):
    def refuse(status: int, code: str, message: str) -> JsonResponse:
        """The challenge docker login answers: a token from our token endpoint, for Basic credentials."""
        response = v2_error(401, "UNAUTHORIZED", message, reason=code)
        # The realm on the host the client reached us at: behind a proxy, that is the one it can reach.
        response["WWW-Authenticate"] = (f'Bearer realm="{request.build_absolute_uri("/v2/token")}",'
                                        f'service="{request.get_host()}"')
        return response
    return refuse


def unavailable(outage: Exception) -> JsonResponse:
    """The database or the blob store is away: clients retry an UNAVAILABLE (503) pull."""
    logger.warning("/v2 cannot answer: %s is unavailable", unavailable_component(outage), exc_info=True)
    response = v2_error(503, "UNAVAILABLE", f"The registry's {unavailable_component(outage)} is unavailable; retry "
                        "in a moment.")
    response["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    return response


def v2_endpoint(view):
    """GET and HEAD only, who reads (``request.reader``), the API version header on every answer, and no CSRF
    (clients have no cookies)."""

    @csrf_exempt
    @functools.wraps(view)
    def endpoint(request, *args, **kwargs):
        if request.method in ("GET", "HEAD"):
            try:
                request.reader, response = reader_of(request, unauthorized(request))
                response = response or view(request, *args, **kwargs)
            except OUTAGES as outage:
                response = unavailable(outage)
        else:
            response = v2_error(405, "UNSUPPORTED", READ_ONLY_MESSAGE, method=request.method)
            response["Allow"] = "GET, HEAD"
        response[API_VERSION_HEADER] = API_VERSION
        return response

    return endpoint


def paginated(request, key: str, items: list[str], document: dict) -> JsonResponse:
    """``items`` after ``last``, at most ``n`` of them, with a Link to the next page when more remain."""
    try:
        limit = int(request.GET["n"]) if "n" in request.GET else None
    except ValueError:
        limit = -1
    if limit is not None and limit < 0:
        return v2_error(400, "PAGINATION_NUMBER_INVALID", "n must be a non-negative integer.", n=request.GET["n"])
    if last := request.GET.get("last"):
        items = [item for item in items if item > last]
    page = items if limit is None else items[:limit]
    response = JsonResponse({**document, key: page})
    if limit and len(items) > limit:
        query = urlencode({"n": limit, "last": page[-1]}, safe="/")
        response["Link"] = f'<{request.path}?{query}>; rel="next"'
    return response


@v2_endpoint
def base(request):
    # 200 without a challenge tells clients that no authentication is needed (or that theirs is good).
    return JsonResponse({})


@v2_endpoint
def token(request):
    """The bearer-token flow's token endpoint: Basic credentials (any user, the API token as password) in, the
    token to send as Bearer out. A revoked token stops working at once, wherever it is presented."""
    if not request.reader.is_authenticated:
        response = v2_error(401, "UNAUTHORIZED", "Log in with any user name and an API token as the password.")
        response["WWW-Authenticate"] = f'Basic realm="{request.get_host()}"'
        return response
    plaintext = presented_token(request)
    if plaintext is None:
        return v2_error(401, "UNAUTHORIZED", "A session cannot be exchanged for a registry token; use an API token.")
    issued = timezone.now()
    return JsonResponse({"token": plaintext, "access_token": plaintext, "expires_in": TOKEN_LIFETIME_SECONDS,
                         "issued_at": issued.isoformat()})


@v2_endpoint
def catalog(request):
    # The whole catalogue: the cluster's rules filter in the query.
    versions = request.reader.visibility.versions(PackageVersion.objects.all())
    names = PublishedImage.objects.filter(version__in=versions).values_list("repository", flat=True).distinct()
    return paginated(request, "repositories", sorted(names), {})


@v2_endpoint
def tags_list(request, name: str):
    images = visible(repository_images(name), request.reader.visibility)
    if not images:
        return name_unknown(name)
    # An image published by digest only has no tag.
    return paginated(request, "tags", sorted({image.tag for image in images if image.tag}), {"name": name})


@v2_endpoint
def manifest(request, name: str, reference: str):
    by_digest = ":" in reference
    if by_digest:
        try:
            parse_digest(reference)
        except InvalidDigest:
            return digest_invalid(reference)
    images, visibility = repository_images(name), request.reader.visibility
    matching = visible(images.filter(manifest_id=reference) if by_digest else images.filter(tag=reference), visibility)
    if not matching:
        return manifest_unknown(name, reference) if visible(images, visibility) else name_unknown(name)
    blob = matching[0].manifest
    identity = {"Docker-Content-Digest": blob.digest}
    if (not_modified := precondition_response(request, f'"{blob.digest}"', identity)) is not None:
        return not_modified
    if request.method == "HEAD":
        response = HttpResponse(content_type=blob.media_type)
    else:
        try:
            with blob_store().open(blob.digest) as stream:
                # Manifests are small documents, checked at ingest.
                response = HttpResponse(stream.read(), content_type=blob.media_type)
        except BlobNotFound:
            # Its version was removed and the blob collected since the query above.
            return manifest_unknown(name, reference)
    # The stored bytes whatever the client's Accept says: the digest names exactly these bytes,
    # and every client that pulls by digest accepts OCI and Docker schema2 alike.
    response["Content-Length"] = blob.size
    response["Docker-Content-Digest"] = blob.digest
    response["ETag"] = f'"{blob.digest}"'
    return response


@v2_endpoint
def blob(request, name: str, digest: str):
    try:
        parse_digest(digest)
    except InvalidDigest:
        return digest_invalid(digest)
    images, visibility = repository_images(name), request.reader.visibility
    using = visible(with_blob(images, digest), visibility)
    if not using:
        return blob_unknown(name, digest) if visible(images, visibility) else name_unknown(name)
    size = using[0].blob_size

    def unsatisfiable(size: int):
        return v2_error(416, "RANGE_INVALID", f"Range {request.headers['Range']!r} is not satisfiable for "
                        f"blob {digest} of {size} bytes.", digest=digest, size=size)

    try:
        return blob_response(request, digest, size, "application/octet-stream",
                             {"Docker-Content-Digest": digest}, unsatisfiable)
    except BlobNotFound:
        # Its version was removed and the blob collected since the query above.
        return blob_unknown(name, digest)


# A path of the shape of an endpoint, but whose name the routes refused.
_ENDPOINT_SHAPE = re.compile(r"^/v2/(?P<name>.+)/(?:manifests/[^/]+|blobs/[^/]+|tags/list)$")


@v2_endpoint
def unknown_endpoint(request):
    shape = _ENDPOINT_SHAPE.match(request.path_info)
    if shape:
        name = shape.group("name")
        return v2_error(400, "NAME_INVALID", f"{name!r} is not a valid repository name (lower-case path components "
                        f"of letters, digits and separators, at most {MAX_NAME_LENGTH} characters).", name=name)
    return v2_error(404, "UNSUPPORTED", "This registry has no such endpoint; it serves pulls only.",
                    path=request.path)


urlpatterns = [
    re_path(r"^v2/?$", base, name="v2-base"),
    path("v2/token", token, name="v2-token"),
    path("v2/_catalog", catalog, name="v2-catalog"),
    path("v2/<repository:name>/tags/list", tags_list, name="v2-tags"),
    path("v2/<repository:name>/manifests/<str:reference>", manifest, name="v2-manifest"),
    path("v2/<repository:name>/blobs/<str:digest>", blob, name="v2-blob"),
    # Everything else under /v2/: the writes of the spec (405) and paths no route accepts.
    re_path(r"^v2/", unknown_endpoint),
]
