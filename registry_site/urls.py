from django.contrib import admin
from django.urls import include, path

from . import health

urlpatterns = [
    path("health", health.liveness, name="health"),
    path("health/ready", health.readiness, name="health-ready"),
    path("api/v1/", include("ingest.urls")),
    path("admin/", admin.site.urls),
]
