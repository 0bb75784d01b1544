"""The catalogue REST API: search packages, read packages and versions, pin a default version, remove a version."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from access.auth import request_actor
from dcos_bundle.flags import parse_bool

from .catalogue import (
    SUMMARY_FIELDS,
    find_package,
    find_version,
    package_summaries,
    pin_default_version,
    remove_version,
    search_packages,
    unpin_default_version,
)
from .serializers import (
    DefaultVersionSerializer,
    PackageDetailSerializer,
    PackageSummarySerializer,
    PinRequestSerializer,
    VersionDetailSerializer,
)

ORDERINGS = {"name": "name", "-name": "-name", "updated": "updated_at", "-updated": "-updated_at"}


@extend_schema(parameters=[
    OpenApiParameter("search", description="Words matched against names, descriptions and tags."),
    OpenApiParameter("tag", description="Only packages with this tag."),
    OpenApiParameter("framework", bool, description="Only packages that are (or are not) frameworks."),
    OpenApiParameter("packaging_version", description="Only packages with a version of this packagingVersion."),
    OpenApiParameter("ordering", enum=list(ORDERINGS), description="Sort order (default: name)."),
])
class PackageList(generics.ListAPIView):
    """Packages with at least one published version; filters match any of their versions."""

    serializer_class = PackageSummarySerializer

    def get_queryset(self):
        params = self.request.query_params
        packages = search_packages(
            self.request.user.visibility, params.get("search", ""), params.get("tag", ""),
            parse_bool(params.get("framework"), "framework"), params.get("packaging_version", ""),
        )
        return packages.order_by(ORDERINGS.get(params.get("ordering", "name"), "name"))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        summaries = package_summaries(page, request.user.visibility)
        return self.get_paginated_response(self.get_serializer(summaries, many=True).data)


class PackageDetail(generics.RetrieveAPIView):
    serializer_class = PackageDetailSerializer

    def retrieve(self, request, *args, **kwargs):
        package = find_package(self.kwargs["name"], request.user.visibility)
        [summary] = package_summaries([package], request.user.visibility)
        by_number = {version.version: version for version in package.versions.only(*SUMMARY_FIELDS)}
        summary["versions"] = [by_number[number] for number in summary["versions"]]
        context = {**self.get_serializer_context(), "package": package.name}
        return Response(PackageDetailSerializer(summary, context=context).data)


class DefaultVersion(generics.GenericAPIView):
    """A package's default version: the highest version unless an operator pinned another.

    PUT pins a published version (it gets the highest releaseVersion in every repository, so Cosmos
    installs it when no version is asked for); DELETE removes the pin. Both are audited.
    """

    serializer_class = DefaultVersionSerializer

    def answer(self, name: str) -> Response:
        package = find_package(name, self.request.user.visibility)
        [summary] = package_summaries([package], self.request.user.visibility)
        return Response(self.get_serializer(summary).data)

    def get(self, request, name: str):
        return self.answer(name)

    def check_may_pin(self, name: str) -> None:
        # Another cluster's package does not exist for a cluster's token (404); its own is not its to pin (403).
        find_package(name, self.request.user.visibility)
        self.request.user.check_pins_default_versions()

    @extend_schema(request=PinRequestSerializer)
    def put(self, request, name: str):
        body = PinRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = body.validated_data["version"]
        self.check_may_pin(name)
        pin_default_version(name, version, request_actor(request), request.user.visibility)
        return self.answer(name)

    def delete(self, request, name: str):
        self.check_may_pin(name)
        unpin_default_version(name, request_actor(request), request.user.visibility)
        return self.answer(name)


class VersionDetail(generics.RetrieveDestroyAPIView):
    """One version; DELETE removes it (its blobs become garbage for GC unless others use them)."""

    serializer_class = VersionDetailSerializer

    def get_object(self):
        return find_version(self.kwargs["name"], self.kwargs["version"], self.request.user.visibility)

    def destroy(self, request, *args, **kwargs):
        version = self.get_object()
        garbage = remove_version(version, request_actor(request))
        return Response({"garbage_blobs": garbage.digests, "garbage_bytes": garbage.size}, status=status.HTTP_200_OK)


urlpatterns = [
    path("packages/", PackageList.as_view(), name="package-list"),
    path("packages/<str:name>/", PackageDetail.as_view(), name="package-detail"),
    path("packages/<str:name>/default-version/", DefaultVersion.as_view(), name="default-version"),
    path("packages/<str:name>/versions/<str:version>/", VersionDetail.as_view(), name="version-detail"),
]
