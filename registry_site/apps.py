from django.apps import AppConfig
from django.conf import settings


class RegistrySiteConfig(AppConfig):
    name = "registry_site"
    verbose_name = "Registry site"

    def ready(self):
        # Start-up of every registry process (web, worker, command): the folders the settings name.
        for folder in settings.LOCAL_FOLDERS:
            folder.mkdir(parents=True, exist_ok=True)
        # Imported here, as Django documents for signal receivers: they need the models loaded.
        from . import worker_start

        worker_start.connect()
