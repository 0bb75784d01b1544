"""Everything the catalogue serves: one module per face of it."""

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("packages_app.catalogue_api")),
    path("api/v1/", include("access.clusters_api")),
    path("", include("packages_app.repo.urls")),
    path("", include("packages_app.resources")),
    path("", include("packages_app.registry_v2")),
]
