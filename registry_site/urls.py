from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import api_root, health, metrics

urlpatterns = [
    path("health", health.liveness, name="health"),
    path("health/ready", health.readiness, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", api_root.api_root, name="api-root"),
    path("api/v1/", include("ingest.urls")),
    path("api/v1/", include("access.api")),
    path("api/v1/", include("operations.api")),
    path("", include("packages_app.urls")),
    path("admin/", admin.site.urls),
    # The pages for people: /, /packages/<name>/..., /getting-started/, /upload/, /jobs/<id>/.
    path("", include("portal.urls")),
]

handler500 = "registry_site.api.server_error"
