"""Runs of the operator's maintenance commands: what metrics, alerts and the GC guard read."""

from django.db import models


class OperationRun(models.Model):
    """One run of an operator's maintenance command; metrics and alerts read the last successful one of each kind."""

    class Kind(models.TextChoices):
        BACKUP = "backup"
        RESTORE = "restore"
        GC = "gc"
        VERIFY = "verify"
        MIGRATE_STORAGE = "migrate_storage"
        EXPORT = "export"
        IMPORT = "import"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    target = models.CharField(max_length=1024, blank=True, help_text="Backup location or storage URL, if any.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    succeeded = models.BooleanField(null=True, help_text="Empty while running.")
    summary = models.JSONField(default=dict, blank=True, help_text="Counts the run reported, or its error.")

    class Meta:
        db_table = "ingest_operationrun"  # the table predates this app
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["kind", "succeeded", "-finished_at"], name="ingest_oper_kind_b5a3b6_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M}"
