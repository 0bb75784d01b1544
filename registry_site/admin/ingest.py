"""Ingest jobs (live progress, retry, cancel) and resumable upload sessions."""

from django.contrib import admin

from access.auth import admin_actor
from dcos_bundle.errors import RegistryError
from ingest import services
from ingest.models import IngestJob, JobStage, UploadSession

from .base import admin_link


class JobStageInline(admin.TabularInline):
    model = JobStage
    fields = ("stage", "bytes_done", "bytes_total", "percent", "started_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = (
        "id", "bundle_name", "package_name", "version", "state", "stage", "progress", "error_code", "version_link",
        "created_at", "duration",
    )
    list_filter = ("state", "stage", "error_code", "cluster")
    search_fields = ("id", "bundle_name", "bundle_digest", "package_name", "created_by")
    list_select_related = ("package_version__package",)
    fieldsets = [
        (None, {"fields": ("id", "state", "stage", "progress", "version_link", "bundle_name", "bundle_size",
                           "bundle_digest", "expected_digest", "replace", "package_name", "version", "created_by",
                           "cluster")}),
        ("Error", {"fields": ("error_code", "error_message", "error_details", "internal_cause")}),
        ("Timings", {"fields": ("created_at", "started_at", "heartbeat_at", "finished_at", "duration")}),
        ("Staging", {"fields": ("staging_path",)}),
    ]
    readonly_fields = [field.name for field in IngestJob._meta.fields] + ["progress", "version_link", "duration"]
    inlines = [JobStageInline]
    actions = ["retry", "cancel"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("stages")

    @admin.display(description="progress")
    def progress(self, job):
        """The current stage's bytes and percent (every stage's are in the table below the job)."""
        stage = next((stage for stage in job.stages.all() if stage.stage == job.stage), None)
        if stage is None:
            return "-"
        return f"{stage.get_stage_display()}: {stage.bytes_done} / {stage.bytes_total} bytes ({stage.percent}%)"

    @admin.display(description="published version", ordering="package_version")
    def version_link(self, job):
        return admin_link(job.package_version)

    @admin.display(description="duration")
    def duration(self, job):
        if job.started_at is None:
            return "-"
        return str((job.finished_at or job.heartbeat_at or job.started_at) - job.started_at).split(".")[0]

    def has_add_permission(self, request):
        return False

    # A job's row is its record (and the owner of its staging file while it runs).
    def has_delete_permission(self, request, obj=None):
        return False

    def _each_job(self, request, queryset, operation, done: str):
        actor = admin_actor(request)
        succeeded = []
        for job in queryset:
            try:
                succeeded.append(operation(job, actor))
            except RegistryError as error:
                self.message_user(request, f"Skipped job {job.pk} ({job.bundle_name or 'no name'}): "
                                           f"{error.message}", "warning")
        if succeeded:
            self.message_user(request, f"{done} {len(succeeded)} job(s): {', '.join(str(j.pk) for j in succeeded)}.")

    @admin.action(permissions=["change"], description="Retry the selected failed jobs (as new jobs)")
    def retry(self, request, queryset):
        self._each_job(request, queryset, services.retry_job, "Queued again as new jobs:")

    @admin.action(permissions=["change"], description="Cancel the selected queued or running jobs")
    def cancel(self, request, queryset):
        self._each_job(request, queryset, services.cancel_job, "Cancelled")


@admin.register(UploadSession)
class UploadSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "file_name", "state", "offset", "size", "created_by", "cluster", "created_at", "updated_at")
    list_filter = ("state", "cluster")
    readonly_fields = [field.name for field in UploadSession._meta.fields]

    def has_add_permission(self, request):
        return False
