from django.apps import AppConfig


class PackagesAppConfig(AppConfig):
    name = "packages_app"
    verbose_name = "Catalogue"
