from django.urls import path

from .views import cluster_repo, repo

urlpatterns = [
    path("repo", repo, name="universe-repo"),
    path("clusters/<slug:name>/repo", cluster_repo, name="cluster-repo"),
]
