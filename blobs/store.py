"""The registry's configured blob store, and the lock that pins it to one backend."""

from __future__ import annotations

import shutil
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from dcos_bundle.errors import ErrorCode, RegistryError

from .drivers import BlobStore, open_store
from .models import StorageBackend


class StorageBackendMismatch(RuntimeError):
    """The configured backend is not the one this registry's blobs live in."""

    def __init__(self, locked: StorageBackend, configured: BlobStore):
        super().__init__(
            f"Refusing to start: this registry's blobs live in {locked.identity} (locked {locked.locked_at:%Y-%m-%d}), "
            f"but STORAGE_URL now points at {configured.identity}. Starting on an empty backend would lose every "
            f"package. To move the blobs, run `python manage.py migrate_storage --to {settings.STORAGE_URL}` with "
            f"the old settings; to keep the old backend, set STORAGE_URL back"
            f"{f' to {locked.url}' if locked.url else ''}."
        )
        self.locked = locked
        self.configured = configured


def store_from_settings(url: str | None = None) -> BlobStore:
    """The store at ``url`` (default STORAGE_URL), with the S3 endpoint and credentials from the settings."""
    return open_store(
        url or settings.STORAGE_URL,
        endpoint_url=settings.S3_ENDPOINT_URL,
        access_key_id=settings.S3_ACCESS_KEY_ID,
        secret_access_key=settings.S3_SECRET_ACCESS_KEY,
        region=settings.S3_REGION,
        public_endpoint_url=settings.S3_PUBLIC_ENDPOINT_URL,
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


def locked_backend() -> StorageBackend | None:
    """The lock as it is now (one cheap read): a migration may have moved it since this process started."""
    return StorageBackend.objects.filter(pk=1).first()


def locked_backend_for_recording() -> StorageBackend | None:
    """The lock, held shared until the caller's transaction ends, so a migration cannot switch it meanwhile.

    PostgreSQL: FOR SHARE lets every recording run in parallel and only the switch waits. SQLite runs
    its transactions one at a time already (IMMEDIATE mode), so a plain read is just as safe there.
    """
    if connection.vendor == "postgresql":
        return next(iter(StorageBackend.objects.raw(
            f"SELECT * FROM {StorageBackend._meta.db_table} WHERE id = 1 FOR SHARE")), None)
    return locked_backend()


def storage_moved(locked: StorageBackend) -> RegistryError:
    return RegistryError(
        ErrorCode.STORAGE_MOVED,
        f"The registry's blobs moved to {locked.identity} (locked {locked.locked_at:%Y-%m-%d %H:%M:%S} UTC), but "
        f"this process still writes to {blob_store().identity}; nothing was stored. Restart this process with "
        f"STORAGE_URL={locked.url or 'the URL of ' + locked.identity}.",
        locked=locked.identity, configured=blob_store().identity,
    )


def check_store_is_locked(store: BlobStore, locked: StorageBackend | None) -> None:
    """Refuse to write to a backend the registry no longer uses (it was migrated while this process ran)."""
    if locked is not None and locked.identity != store.identity:
        raise storage_moved(locked)


def refuse_uploads_while_storage_moves() -> None:
    """New ingest waits for a storage migration's final pass, and never starts on a backend that was left."""
    locked = locked_backend()
    check_store_is_locked(blob_store(), locked)
    if locked is not None and locked.migrating_to:
        raise RegistryError(
            ErrorCode.STORAGE_MIGRATION,
            f"The registry is moving its blobs to {locked.migrating_to} and accepts no uploads during the final "
            "copy; retry in a minute.",
            migrating_to=locked.migrating_to,
        )


def free_disk() -> dict[str, int]:
    """Free bytes where uploads land: the data directory (staging) and, for local storage, the blobs."""
    free = {"data_dir": shutil.disk_usage(settings.DATA_DIR).free}
    blob_free = blob_store().free_bytes()
    if blob_free is not None:
        free["blob_store"] = blob_free
    return free


def low_disk() -> list[str]:
    """The places with less free space than DISK_FREE_THRESHOLD_BYTES."""
    return sorted(name for name, value in free_disk().items() if value < settings.DISK_FREE_THRESHOLD_BYTES)


def refuse_uploads_when_disk_low() -> None:
    """Refuse an upload at the door rather than let it fail half way through."""
    if low := low_disk():
        raise RegistryError(
            ErrorCode.INSUFFICIENT_STORAGE,
            f"The registry is low on disk ({', '.join(low)} below {settings.DISK_FREE_THRESHOLD_BYTES} free bytes) "
            "and accepts no uploads until space is freed (run `manage.py gc`, or add storage).",
            low=low, threshold_bytes=settings.DISK_FREE_THRESHOLD_BYTES,
        )

