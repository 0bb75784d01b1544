"""The clusters REST API: create, read, change and remove the clusters this registry serves."""

from __future__ import annotations

from django.urls import path
from rest_framework import generics
from rest_framework.exceptions import PermissionDenied

from access import audit
from access.models import AuditEvent

from .clusters import find_cluster
from .models import Cluster
from .serializers import ClusterSerializer


def own_cluster_only(request, name: str | None = None) -> None:
    """A cluster's token reads and changes its own cluster, and creates none."""
    bound = request.user.cluster
    if bound is not None and bound.name != name:
        raise PermissionDenied(f"This token belongs to cluster {bound.name}.")


class ClusterList(generics.ListCreateAPIView):
    serializer_class = ClusterSerializer

    def get_queryset(self):
        clusters = Cluster.objects.prefetch_related("rules")
        bound = self.request.user.cluster
        return clusters.filter(pk=bound.pk) if bound is not None else clusters

    def perform_create(self, serializer):
        own_cluster_only(self.request)
        cluster = serializer.save()
        audit.record_request(self.request, AuditEvent.Action.CLUSTER_CREATE, cluster.name,
                             fields=serializer.data)


class ClusterDetail(generics.RetrieveUpdateDestroyAPIView):
    """One cluster; PUT/PATCH change it (``rules`` replace the allow-list), DELETE removes it."""

    serializer_class = ClusterSerializer

    def get_object(self):
        own_cluster_only(self.request, self.kwargs["name"])
        return find_cluster(self.kwargs["name"])

    def perform_update(self, serializer):
        cluster = serializer.save()
        audit.record_request(self.request, AuditEvent.Action.CLUSTER_CHANGE, cluster.name,
                             fields=serializer.data)

    def perform_destroy(self, cluster):
        audit.record_request(self.request, AuditEvent.Action.CLUSTER_REMOVE, cluster.name)
        cluster.delete()


urlpatterns = [
    path("clusters/", ClusterList.as_view(), name="cluster-list"),
    path("clusters/<str:name>/", ClusterDetail.as_view(), name="cluster-detail"),
]
