from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"
    verbose_name = "Ingest and storage"

    def ready(self):
        # Imported here, as Django documents for signal receivers: they need the models loaded.
        from . import services

        services.connect()
