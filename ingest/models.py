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
        RECEIVE = "receive"
        INSPECT = "inspect"
        VALIDATE = "validate"
        VERIFY_IMAGES = "verify_images"
        STORE = "store"
        PUBLISH = "publish"

    # A job in these states may still need its staging file and the blobs it claimed.
    UNFINISHED_STATES = (State.QUEUED, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.RECEIVE)
    bundle_name = models.CharField(max_length=255, blank=True, help_text="File name the bundle was uploaded as.")
    bundle_size = models.BigIntegerField(default=0)
    bundle_digest = models.CharField(max_length=71, blank=True, help_text="sha256 of the bundle file, once known.")
    expected_digest = models.CharField(
        max_length=71, blank=True, help_text="sha256 the uploader declared; checked before anything else."
    )
    staging_path = models.CharField(max_length=1024, blank=True)
    replace = models.BooleanField(default=False, help_text="Replace a published version of the same name and version.")
    package_name = models.CharField(max_length=255, blank=True, db_index=True)
    version = models.CharField(max_length=255, blank=True)
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


class JobStage(models.Model):
    """Progress of one stage of a job; stages that fan out add to ``bytes_done`` from several workers."""

    job = models.ForeignKey(IngestJob, on_delete=models.CASCADE, related_name="stages")
    stage = models.CharField(max_length=16, choices=IngestJob.Stage.choices)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "stage"], name="unique_job_stage")]

    @property
    def percent(self) -> float:
        if self.bytes_total <= 0:
            return 100.0 if self.finished_at else 0.0
        return round(100.0 * min(self.bytes_done, self.bytes_total) / self.bytes_total, 1)


class JobBlob(models.Model):
    """A blob a running job needs: its claim keeps cleanup and GC away, and it becomes a VersionBlob on publish."""

    job = models.ForeignKey(IngestJob, on_delete=models.CASCADE, related_name="blobs")
    digest = models.CharField(max_length=71)
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=255, blank=True)
    role = models.CharField(max_length=16)
    name = models.CharField(max_length=1024, blank=True)
    # Layers only: the diff_id the image config declares, checked while the layer is stored.
    diff_id = models.CharField(max_length=71, blank=True)
    stored = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "digest", "role", "name"], name="unique_job_blob_use"),
        ]
        indexes = [models.Index(fields=["digest"])]


class UploadSession(models.Model):
    """A resumable upload: chunks are appended to a staging file until it is committed."""

    class State(models.TextChoices):
        OPEN = "open"
        COMMITTED = "committed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    size = models.BigIntegerField(help_text="Declared size of the whole bundle.")
    offset = models.BigIntegerField(default=0, help_text="Bytes received so far.")
    expected_digest = models.CharField(max_length=71, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    replace = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    job = models.OneToOneField(IngestJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="upload")

    def __str__(self) -> str:
        return f"upload {self.id} ({self.offset}/{self.size})"


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

    def __str__(self) -> str:
        return self.identity


class OperationRun(models.Model):
    """One run of an operator's maintenance command; metrics and alerts read the last successful one of each kind."""

    class Kind(models.TextChoices):
        BACKUP = "backup"
        RESTORE = "restore"
        GC = "gc"
        VERIFY = "verify"
        MIGRATE_STORAGE = "migrate_storage"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    target = models.CharField(max_length=1024, blank=True, help_text="Backup location or storage URL, if any.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    succeeded = models.BooleanField(null=True, help_text="Empty while running.")
    summary = models.JSONField(default=dict, blank=True, help_text="Counts the run reported, or its error.")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["kind", "succeeded", "-finished_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M}"
