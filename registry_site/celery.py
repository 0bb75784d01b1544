"""The Celery app shared by every worker and by the web processes that send tasks."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

app = Celery("registry_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _refuse_a_different_storage_backend(**_):
    from ingest.storage import StorageBackendMismatch, ensure_backend_lock

    try:
        ensure_backend_lock()
    except StorageBackendMismatch as mismatch:
        # SystemExit, not an exception: Celery logs exceptions from signal handlers and goes on.
        raise SystemExit(str(mismatch)) from None
