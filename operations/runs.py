"""Recording maintenance runs (backup, restore, GC, verify, storage migration) for operators and metrics."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

from django.conf import settings
from django.utils import timezone

from dcos_bundle.errors import RegistryError

from .models import OperationRun


@contextmanager
def recorded_run(kind: OperationRun.Kind, target: str = "", run: OperationRun | None = None) -> Iterator[OperationRun]:
    """Record a run (or go on with ``run``, created when the API accepted it); the caller fills ``run.summary`` and
    may set ``run.succeeded = False`` for a run that found harm.

    An exception marks the run failed with its message (and its code, for a RegistryError) and propagates.
    """
    run = run or OperationRun.objects.create(kind=kind, target=target)
    try:
        yield run
    except BaseException as error:
        run.succeeded = False
        run.summary = {**run.summary, "error": str(error) or type(error).__name__}
        if isinstance(error, RegistryError):
            run.summary["code"] = str(error.code)
        raise
    else:
        if run.succeeded is None:
            run.succeeded = True
    finally:
        run.finished_at = timezone.now()
        run.save(update_fields=["succeeded", "summary", "finished_at"])


def last_success(kind: OperationRun.Kind) -> OperationRun | None:
    return OperationRun.objects.filter(kind=kind, succeeded=True).order_by("-finished_at").first()


# These runs copy blobs from a list made when they started: a blob GC deleted meanwhile would be lost to them.
BLOB_COPYING_KINDS = (OperationRun.Kind.BACKUP, OperationRun.Kind.MIGRATE_STORAGE, OperationRun.Kind.EXPORT)


def maintenance_running() -> OperationRun | None:
    """The newest unfinished backup, export or storage migration, if one runs.

    A run left unfinished for longer than MAINTENANCE_GUARD_SECONDS is presumed crashed, so that
    it does not keep GC away forever.
    """
    since = timezone.now() - timedelta(seconds=settings.MAINTENANCE_GUARD_SECONDS)
    return (OperationRun.objects.filter(kind__in=BLOB_COPYING_KINDS, finished_at__isnull=True, started_at__gte=since)
            .order_by("-started_at").first())
