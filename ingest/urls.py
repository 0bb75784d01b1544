from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("uploads", views.UploadSessionViewSet, basename="upload")
router.register("jobs", views.IngestJobViewSet, basename="job")

urlpatterns = [
    path("bundles/", views.BundleUploadView.as_view(), name="bundle-upload"),
    *router.urls,
]
