"""What ingest produces and tracks: stored blobs, ingest jobs, and the locked storage backend."""

import uuid

from django.db import models


class Blob(models.Model):
    """A content-addressed blob in the storage backend."""

    digest = models.CharField(max_length=71, primary_key=True, help_text="sha256:<hex>")
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.digest


class IngestJob(models.Model):
    """One bundle on its way from upload to published version."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Stage(models.TextChoices):
        RECEIVED = "received"
        INSPECT = "inspect"
        VALIDATE = "validate"
        VERIFY_IMAGES = "verify_images"
        STORE = "store"
        PUBLISH = "publish"

    FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.RECEIVED)
    bundle_name = models.CharField(max_length=255, blank=True, help_text="File name the bundle was uploaded as.")
    bundle_digest = models.CharField(max_length=71, blank=True)
    bytes_done = models.BigIntegerField(default=0, help_text="Progress of the current stage.")
    bytes_total = models.BigIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched with every progress write; the reaper fails running jobs whose heartbeat stopped.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    package_version = models.ForeignKey(
        "packages_app.PackageVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="ingest_jobs"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"job {self.id} ({self.state})"

    @property
    def percent(self) -> float:
        if self.bytes_total <= 0:
            return 100.0 if self.state == self.State.SUCCEEDED else 0.0
        return round(100.0 * min(self.bytes_done, self.bytes_total) / self.bytes_total, 1)


class StorageBackend(models.Model):
    """The storage backend this registry is locked to; one row, written at first start."""

    kind = models.CharField(max_length=16)
    identity = models.CharField(max_length=1024, help_text="Kind and location, without credentials.")
    locked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.identity
