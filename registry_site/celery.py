"""The Celery app shared by every worker and by the web processes that send tasks."""

import os

from celery import Celery
from celery.signals import setup_logging, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

app = Celery("registry_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_like_the_web(**_):
    """Celery's own lines go through the registry's structlog setup instead of Celery's formatter."""
    from django.conf import settings

    from registry_site.logs import configure

    configure(settings.LOGGING)


@worker_init.connect
def _refuse_a_different_storage_backend(**_):
    from ingest.storage import StorageBackendMismatch, ensure_backend_lock

    try:
        ensure_backend_lock()
    except StorageBackendMismatch as mismatch:
        # SystemExit, not an exception: Celery logs exceptions from signal handlers and goes on.
        raise SystemExit(str(mismatch)) from None


@worker_init.connect
def _serve_worker_metrics(**_):
    from django.conf import settings

    from registry_site.metrics import serve_worker_metrics

    if settings.WORKER_METRICS_PORT:
        serve_worker_metrics(settings.WORKER_METRICS_PORT)
