"""The Celery app shared by every worker and by the web processes that send tasks.

What a worker does when it starts (the storage lock check, its metrics port) is connected in
``RegistrySiteConfig.ready()``, once the models can be imported: see ``worker_start.py``.
"""

import os

from celery import Celery
from celery.signals import setup_logging
from django.conf import settings

from telemetry.logs import configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

app = Celery("registry_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_like_the_web(**_):
    """Celery's own lines go through the registry's structlog setup instead of Celery's formatter."""
    configure(settings.LOGGING)
