"""Asset downloads: ``/resource/<coordinate>/sha256:<hex>/<file name>``, the URLs ``/repo`` hands out.

Mesos fetchers and the DC/OS CLI download package files from here instead of the internet.
"""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_safe

from access.auth import WWW_AUTHENTICATE, reader_of
from blobs.drivers import BlobNotFound
from dcos_bundle.universe.resource import file_name_of
from packages_app.models import VersionBlob

from .blob_responses import blob_response
from .coordinates import parse_coordinate

logger = logging.getLogger(__name__)


def _not_found(message: str, **details) -> JsonResponse:
    return JsonResponse({"code": "resource_not_found", "message": message, "details": details}, status=404)


def _refuse(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"code": code, "message": message, "details": {}}, status=status)
    response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


@require_safe
def resource(request, coordinate: str, digest: str, file_name: str):
    reader, refused = reader_of(request, _refuse)
    if refused:
        return refused
    package = parse_coordinate(coordinate)
    if package is None:
        return _not_found(f"{coordinate} is not a package coordinate.", coordinate=coordinate)
    name, version = package
    if not reader.visibility.allows(name, version):
        # What a cluster may not see does not exist for it.
        return _not_found(f"Version {version} of package {name} has no file {digest}.", package=name,
                          version=version, digest=digest)
    link = (
        VersionBlob.objects.select_related("blob")
        .filter(role=VersionBlob.Role.ASSET, blob_id=digest, version__package__name=name, version__version=version)
        .first()
    )
    if link is None:
        return _not_found(f"Version {version} of package {name} has no file {digest}.", package=name,
                          version=version, digest=digest)
    try:
        return blob_response(
            request, digest, link.blob.size, link.blob.media_type or "application/octet-stream",
            {
                # The name the package's own URL gave the file, whatever the request path said.
                "Content-Disposition": f'attachment; filename="{file_name_of(link.name)}"',
                "Cache-Control": "public, max-age=31536000, immutable",
            },
        )
    except BlobNotFound:
        logger.error("Blob %s of %s %s is referenced but missing from storage", digest, name, version)
        return _not_found(f"The file {digest} is missing from storage; run verify_blobs.", digest=digest)


urlpatterns = [
    path("resource/<str:coordinate>/<str:digest>/<str:file_name>", resource, name="resource"),
]
