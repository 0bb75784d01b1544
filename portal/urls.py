from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("packages/<str:name>/", views.package_page, name="package"),
    path("packages/<str:name>/<str:version>/", views.version_page, name="version"),
    path("getting-started/", views.getting_started, name="getting-started"),
    path("upload/", views.upload, name="upload"),
    path("jobs/<uuid:job_id>/", views.job_page, name="job"),
    path("sign-in/", views.sign_in, name="sign-in"),
    path("sign-out/", views.sign_out, name="sign-out"),
]
