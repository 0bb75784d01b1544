"""The clusters REST API: create, read, change and remove the clusters this registry serves."""

from __future__ import annotations

from django.urls import path
from rest_framework import generics

from .clusters import find_cluster
from .models import Cluster
from .serializers import ClusterSerializer


class ClusterList(generics.ListCreateAPIView):
    serializer_class = ClusterSerializer
    queryset = Cluster.objects.prefetch_related("rules")


class ClusterDetail(generics.RetrieveUpdateDestroyAPIView):
    """One cluster; PUT/PATCH change it (``rules`` replace the allow-list), DELETE removes it."""

    serializer_class = ClusterSerializer

    def get_object(self):
        return find_cluster(self.kwargs["name"])


urlpatterns = [
    path("clusters/", ClusterList.as_view(), name="cluster-list"),
    path("clusters/<str:name>/", ClusterDetail.as_view(), name="cluster-detail"),
]
