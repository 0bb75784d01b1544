"""The API's root: every collection by its URL, the OpenAPI schema and its documentation, the Universe repository.

Its own module: ``api.py`` holds the parser DRF's settings name, which a view module here would import in a circle.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

# What /api/v1/ lists, each collection by its URL name; what a caller may do there is each endpoint's own rule.
API_ROOT_LINKS = {
    "packages": "package-list",
    "clusters": "cluster-list",
    "bundles": "bundle-upload",
    "uploads": "upload-list",
    "jobs": "job-list",
    "tokens": "token-list",
    "audit": "audit-list",
    "exports": "transfer-export",
    "imports": "transfer-import",
    "schema": "api-schema",
    "docs": "api-docs",
    "repo": "universe-repo",
}


@extend_schema(responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request, format=None):
    """The API's index: its collections, the OpenAPI schema and its documentation, and the Universe repository."""
    return Response({name: reverse(url_name, request=request) for name, url_name in API_ROOT_LINKS.items()})
