"""The registry's configured blob store, and the lock that pins it to one backend."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, transaction

from .blobstore import BlobStore, open_store
from .models import StorageBackend


class StorageBackendMismatch(RuntimeError):
    """The configured backend is not the one this registry's blobs live in."""

    def __init__(self, locked: StorageBackend, configured: BlobStore):
        super().__init__(
            f"Refusing to start: this registry's blobs live in {locked.identity} (locked {locked.locked_at:%Y-%m-%d}), "
            f"but STORAGE_URL now points at {configured.identity}. Starting on an empty backend would lose every "
            f"package. To move the blobs, run `python manage.py migrate_storage --to {settings.STORAGE_URL}` with "
            f"the old settings; to keep the old backend, set STORAGE_URL back."
        )
        self.locked = locked
        self.configured = configured


def store_from_settings() -> BlobStore:
    return open_store(
        settings.STORAGE_URL,
        endpoint_url=settings.S3_ENDPOINT_URL,
        access_key_id=settings.S3_ACCESS_KEY_ID,
        secret_access_key=settings.S3_SECRET_ACCESS_KEY,
        region=settings.S3_REGION,
    )


@lru_cache(maxsize=1)
def blob_store() -> BlobStore:
    """The process-wide blob store configured by the settings."""
    return store_from_settings()


def ensure_backend_lock(store: BlobStore | None = None) -> StorageBackend:
    """Record the backend at first start; refuse a different one afterwards."""
    store = store or blob_store()
    locked = StorageBackend.objects.first()
    if locked is None:
        try:
            with transaction.atomic():
                locked = StorageBackend.objects.create(pk=1, kind=store.kind, identity=store.identity)
        except IntegrityError:
            # Another process (web or worker) locked it first.
            locked = StorageBackend.objects.get(pk=1)
    if locked.identity != store.identity:
        raise StorageBackendMismatch(locked, store)
    return locked
