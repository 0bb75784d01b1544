from django.apps import AppConfig


class PackagesAppConfig(AppConfig):
    name = "packages_app"
    verbose_name = "Catalogue"

    def ready(self):
        # Imported here, not at the top: the repository's cache needs the models, which load after this module.
        from .repo import cache

        cache.connect_signals()
