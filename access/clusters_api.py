"""The clusters REST API: create, read, change and remove the clusters this registry serves."""

from __future__ import annotations

from django.urls import path
from rest_framework import generics

from .auth import request_actor
from .clusters import find_cluster, remove_cluster
from .serializers import ClusterSerializer


class ClusterList(generics.ListCreateAPIView):
    """The clusters the caller reaches (a cluster's token: its own); POST creates one."""

    serializer_class = ClusterSerializer

    def get_queryset(self):
        return self.request.user.clusters()

    def create(self, request, *args, **kwargs):
        # Before validation, whose answers (a name taken) would tell a cluster's token about other clusters.
        request.user.check_manages_clusters()
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.save(actor=request_actor(self.request))


class ClusterDetail(generics.RetrieveUpdateDestroyAPIView):
    """One cluster; PUT/PATCH change it (``rules`` replace the allow-list), DELETE removes it."""

    serializer_class = ClusterSerializer

    def get_object(self):
        return find_cluster(self.kwargs["name"], self.request.user.clusters())

    def update(self, request, *args, **kwargs):
        # Before validation, whose answers (a name taken) would tell a cluster's token about other clusters.
        request.user.check_cluster_change(self.get_object(), request.data)
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.save(actor=request_actor(self.request))

    def perform_destroy(self, cluster):
        self.request.user.check_manages_clusters()
        remove_cluster(cluster, request_actor(self.request))


urlpatterns = [
    path("clusters/", ClusterList.as_view(), name="cluster-list"),
    path("clusters/<str:name>/", ClusterDetail.as_view(), name="cluster-detail"),
]
