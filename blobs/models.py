"""Content-addressed blobs as the catalogue knows them, and the storage backend the registry is locked to."""

from django.db import models

from dcos_bundle.format import BlobRole

# What a blob is to the version that uses it, and to the job that claims it.
BLOB_ROLE_CHOICES = [(role.value, role.label) for role in BlobRole]


class Blob(models.Model):
    """A content-addressed blob in the storage backend."""

    digest = models.CharField(max_length=71, primary_key=True, help_text="sha256:<hex>")
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "ingest_blob"  # the table predates this app
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.digest


class StorageBackend(models.Model):
    """The storage backend this registry is locked to; one row, written at first start."""

    kind = models.CharField(max_length=16)
    identity = models.CharField(max_length=1024, help_text="Kind and location, without credentials.")
    locked_at = models.DateTimeField(auto_now_add=True)
    url = models.CharField(max_length=1024, blank=True, help_text="STORAGE_URL of the backend, once a migration set it.")
    # Set by migrate_storage for its final pass: no new ingest until the lock moves to this backend.
    migrating_to = models.CharField(
        max_length=1024, blank=True, help_text="Identity of the backend a storage migration is about to switch to."
    )

    class Meta:
        db_table = "ingest_storagebackend"  # the table predates this app

    def __str__(self) -> str:
        return self.identity
