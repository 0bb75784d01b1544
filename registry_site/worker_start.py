"""What every Celery worker checks and starts before it takes a task."""

from celery.signals import worker_init
from django.conf import settings

from blobs.store import StorageBackendMismatch, ensure_backend_lock
from telemetry.metrics import serve_worker_metrics


def refuse_a_different_storage_backend(**_):
    try:
        ensure_backend_lock()
    except StorageBackendMismatch as mismatch:
        # SystemExit, not an exception: Celery logs exceptions from signal handlers and goes on.
        raise SystemExit(str(mismatch)) from None


def start_worker_metrics(**_):
    if settings.WORKER_METRICS_PORT:
        serve_worker_metrics(settings.WORKER_METRICS_PORT)


def connect() -> None:
    worker_init.connect(refuse_a_different_storage_backend, dispatch_uid="registry-storage-lock")
    worker_init.connect(start_worker_metrics, dispatch_uid="registry-worker-metrics")
