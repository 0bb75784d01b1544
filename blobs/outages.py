"""Outages: failures of a service the registry depends on (its database, its blob store) that pass.

One classification for everyone who must tell them from the registry's own faults: the web answers
them with 503 and Retry-After instead of 500, ingest tasks retry them with back-off instead of
failing the job, and ``/repo`` keeps serving what it last served. The S3 driver already turns its
outages into ``BlobStoreUnavailable``; a refusal (403, a missing bucket) is not an outage.
"""

from __future__ import annotations

from django import db

from .drivers import BlobStoreUnavailable

# The database: no connection, a connection lost or closed, the server shutting down or still starting.
DATABASE_OUTAGES = (db.OperationalError, db.InterfaceError)
OUTAGES = (*DATABASE_OUTAGES, BlobStoreUnavailable)


def unavailable_component(error: BaseException | None) -> str | None:
    """The service whose outage ``error`` shows ("database" or "blob store"), or None for any other failure."""
    if isinstance(error, DATABASE_OUTAGES):
        return "database"
    if isinstance(error, BlobStoreUnavailable):
        return "blob store"
    return None
