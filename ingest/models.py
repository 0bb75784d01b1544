"""Ingest jobs on their way from upload to published version, their stages, claims and upload sessions."""

import uuid

from django.db import models

from access.models import Cluster
from blobs.models import BLOB_ROLE_CHOICES
from packages_app.fields import ExactJSONField


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

    class Outcome(models.TextChoices):
        """What a succeeded job did to the catalogue."""

        PUBLISHED = "published"
        REPLACED = "replaced"
        # The same content was already published as this version: nothing changed.
        UNCHANGED = "unchanged"

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
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, null=True, blank=True,
        help_text="What the job did to the catalogue, once it succeeded.",
    )
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    internal_cause = models.TextField(
        blank=True, help_text="What failed inside the registry, for its operators (the admin); the API never shows it."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched with every progress write; the reaper fails running jobs whose heartbeat stopped.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the job's next task was last sent to the workers; a lost one is sent again "
                  "after INGEST_REDISPATCH_AFTER_SECONDS.",
    )
    run_task_id = models.CharField(
        max_length=64, blank=True,
        help_text="The run task that started the job: its retries and redeliveries go on with it, another copy "
                  "of it does nothing.",
    )
    # As text, like the version's metadata: jsonb would reorder the metadata's keys before it is published.
    plan = ExactJSONField(
        null=True, blank=True, editable=False,
        help_text="What validation made of the bundle (its metadata, assets and image manifests), kept so that the "
                  "last step publishes it without reading and validating the bundle again.",
    )
    package_version = models.ForeignKey(
        "packages_app.PackageVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="ingest_jobs"
    )
    created_by = models.CharField(max_length=255, blank=True, help_text="Who uploaded the bundle, as the audit log "
                                  "names the caller: token:<name> (<key id>) or user:<name>.")
    # Removing a cluster first cancels its unfinished jobs (services.end_what_a_cluster_started): they stay as records.
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The cluster of the token that uploaded the bundle: only that cluster's tokens see the job, and it "
                  "publishes only what the cluster may see.",
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

    def __str__(self) -> str:
        return self.get_stage_display()

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
    role = models.CharField(max_length=16, choices=BLOB_ROLE_CHOICES)
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
    """A resumable upload: chunks are appended to its staged bundle until it is committed."""

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
    # The job of a committed upload inherits both.
    created_by = models.CharField(max_length=255, blank=True, help_text="Who opened the upload, the only caller "
                                  "(with unrestricted admins) that may use it.")
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text="The cluster of the token that opened the upload.")
    # Staged in S3 (ingest.staging.ObjectStaging): the multipart upload the chunks go to, the parts sent so
    # far ({PartNumber, ETag, checksum, Size}) and where the tail objects (bytes not yet in a part) start.
    staged_upload_id = models.CharField(max_length=1024, blank=True)
    staged_parts = models.JSONField(default=list, blank=True)
    staged_tail = models.JSONField(default=list, blank=True)
    # Carried from chunk to chunk, whichever web takes the next one: the sha256 of the bytes so far
    # (dcos_bundle.digests.ResumableSha256) and how far the bundle's members were followed (ingest.arrivals).
    received_hash = models.JSONField(null=True, blank=True)
    member_scan = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"upload {self.id} ({self.offset}/{self.size})"


class ArrivedLayer(models.Model):
    """A layer of a bundle still arriving, handed to a worker as soon as its bytes were staged (ingest.arrivals).

    Its owner is the job receiving the bundle, or the resumable upload until its commit names the job.
    Once stored, it keeps cleanup and GC away from the blob like a job's claim, until the owner ends.
    """

    class State(models.TextChoices):
        CHECKING = "checking"
        STORED = "stored"
        # Not what its member's name and header promise: the job's own check of the layer says why.
        REFUSED = "refused"

    job = models.ForeignKey(IngestJob, null=True, blank=True, on_delete=models.CASCADE, related_name="arrived_layers")
    upload = models.ForeignKey(UploadSession, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="arrived_layers")
    location = models.CharField(max_length=1024, help_text="The staged bundle the layer's bytes are in.")
    member = models.CharField(max_length=1024)
    digest = models.CharField(max_length=71)
    data_offset = models.BigIntegerField()
    size = models.BigIntegerField()
    crc = models.BigIntegerField(help_text="The CRC-32 its local header declares; the bytes were checked against it.")
    diff_id = models.CharField(max_length=71, blank=True, help_text="What the layer decompresses to, once stored.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.CHECKING)
    awaited = models.BooleanField(default=False, help_text="The job's run found it still being checked: its end "
                                  "marks the job's claim stored.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["location", "data_offset"], name="unique_arrived_layer")]
        indexes = [models.Index(fields=["digest"])]

    def __str__(self) -> str:
        return f"arrived layer {self.digest} ({self.state})"
