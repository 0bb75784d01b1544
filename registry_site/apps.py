from django.apps import AppConfig


class RegistrySiteConfig(AppConfig):
    name = "registry_site"
    verbose_name = "Registry site"

    def ready(self):
        # Imported here, as Django documents for signal receivers: they need the models loaded.
        from . import worker_start

        worker_start.connect()
