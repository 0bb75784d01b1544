"""Liveness and readiness endpoints, the targets of Marathon's health checks."""

from __future__ import annotations

import time
from typing import Callable

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from blobs.store import blob_store, free_disk, low_disk

from .celery import app as celery_app

BROKER_TIMEOUT_SECONDS = 3


class CheckFailed(Exception):
    """A readiness check ran and found a problem it can describe."""


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_broker() -> dict:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
        return {"transport": conn.transport_cls}


def check_blob_store() -> dict:
    store = blob_store()
    store.probe()
    return {"backend": store.identity}


def check_disk() -> dict:
    """Free space for staging (the data directory) and, for local storage, for blobs."""
    threshold = settings.DISK_FREE_THRESHOLD_BYTES
    details = {"threshold_bytes": threshold, "free_bytes": free_disk()}
    low = low_disk()
    if low:
        raise CheckFailed(f"Free disk below the threshold of {threshold} bytes for: {', '.join(low)}; "
                          "uploads are refused.", details)
    return details


READINESS_CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "broker": check_broker,
    "blob_store": check_blob_store,
    "disk": check_disk,
}


def run_check(check: Callable[[], dict]) -> dict:
    started = time.monotonic()
    try:
        result = {"ok": True, **check()}
    except CheckFailed as failure:
        message, details = failure.args
        result = {"ok": False, "error": message, **details}
    except Exception as error:  # a readiness probe reports every failure, never raises
        # For the operator: the driver's own error says where (BlobStoreUnavailable's message does not).
        cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
        result = {"ok": False, "error": f"{type(error).__name__}: {error}{cause}"}
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


@never_cache
@require_safe
def liveness(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readiness(request):
    checks = {name: run_check(check) for name, check in READINESS_CHECKS.items()}
    ready = all(result["ok"] for result in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
