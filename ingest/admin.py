from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Sum
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from registry_site import audit
from registry_site.models import AuditEvent

from . import services
from .errors import IngestError
from .models import Blob, IngestJob, JobStage, OperationRun, StorageBackend, UploadSession
from .operation_runs import last_success
from .storage import blob_store, free_disk, low_disk

# The admin index links the storage status page.
admin.site.index_template = "admin/registry_index.html"


def admin_link(obj) -> str:
    if obj is None:
        return "-"
    meta = obj._meta
    return format_html('<a href="{}">{}</a>', reverse(f"admin:{meta.app_label}_{meta.model_name}_change",
                                                      args=[obj.pk]), obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the registry writes itself; editing them by hand would break what they record."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Blob)
class BlobAdmin(ReadOnlyAdmin):
    list_display = ("digest", "size", "media_type", "reference_count", "created_at")
    search_fields = ("digest",)
    list_filter = ("media_type",)
    fields = ("digest", "size", "media_type", "created_at", "reference_count", "referencing_versions")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(reference_count=Count("references"))

    @admin.display(ordering="reference_count", description="references")
    def reference_count(self, blob):
        return blob.reference_count

    @admin.display(description="used by")
    def referencing_versions(self, blob):
        links = blob.references.select_related("version__package").order_by("version__package__name", "role")
        return format_html_join(
            mark_safe("<br>"), "{} ({} {})", ((admin_link(link.version), link.role, link.name) for link in links)
        ) or "no version: garbage once older than GC_PROTECTION_SECONDS"


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
    list_filter = ("state", "stage", "error_code")
    search_fields = ("id", "bundle_name", "bundle_digest", "package_name")
    list_select_related = ("package_version__package",)
    fieldsets = [
        (None, {"fields": ("id", "state", "stage", "progress", "version_link", "bundle_name", "bundle_size",
                           "bundle_digest", "expected_digest", "replace", "package_name", "version")}),
        ("Error", {"fields": ("error_code", "error_message", "error_details")}),
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

    def _each_job(self, request, queryset, operation, done: str, action: str):
        succeeded = []
        for job in queryset:
            try:
                succeeded.append(operation(job))
                audit.record_admin(request, action, f"job {job.pk}", result=f"job {succeeded[-1].pk}")
            except IngestError as error:
                self.message_user(request, f"Skipped job {job.pk} ({job.bundle_name or 'no name'}): "
                                           f"{error.message}", "warning")
        if succeeded:
            self.message_user(request, f"{done} {len(succeeded)} job(s): {', '.join(str(j.pk) for j in succeeded)}.")

    @admin.action(permissions=["change"], description="Retry the selected failed jobs (as new jobs)")
    def retry(self, request, queryset):
        self._each_job(request, queryset, services.retry_job, "Queued again as new jobs:", AuditEvent.Action.JOB_RETRY)

    @admin.action(permissions=["change"], description="Cancel the selected queued or running jobs")
    def cancel(self, request, queryset):
        self._each_job(request, queryset, services.cancel_job, "Cancelled", AuditEvent.Action.JOB_CANCEL)


@admin.register(UploadSession)
class UploadSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "file_name", "state", "offset", "size", "created_at", "updated_at")
    list_filter = ("state",)
    readonly_fields = [field.name for field in UploadSession._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(OperationRun)
class OperationRunAdmin(ReadOnlyAdmin):
    list_display = ("kind", "target", "started_at", "finished_at", "succeeded")
    list_filter = ("kind", "succeeded")
    readonly_fields = [field.name for field in OperationRun._meta.fields]


@admin.register(StorageBackend)
class StorageBackendAdmin(admin.ModelAdmin):
    list_display = ("kind", "identity", "locked_at", "migrating_to")
    readonly_fields = ("kind", "identity", "url", "locked_at", "migrating_to")

    # The lock changes only through migrate_storage, never by hand.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("status/", self.admin_site.admin_view(self.status_view), name="ingest_storage_status"),
                *super().get_urls()]

    def status_view(self, request):
        configured = blob_store()
        locked = StorageBackend.objects.first()
        used = Blob.objects.aggregate(bytes=Sum("size"), count=Count("digest"))
        try:
            free, low, disk_error = free_disk(), low_disk(), ""
        except OSError as error:
            free, low, disk_error = {}, [], str(error)
        context = {
            **self.admin_site.each_context(request),
            "title": "Storage status",
            "opts": self.model._meta,
            "configured": configured,
            "locked": locked,
            "lock_matches": locked is not None and locked.identity == configured.identity,
            "used_bytes": used["bytes"] or 0,
            "blob_count": used["count"],
            "free": sorted(free.items()),
            "low": low,
            "disk_error": disk_error,
            "threshold": settings.DISK_FREE_THRESHOLD_BYTES,
            "last_runs": [(kind.label, OperationRun.objects.filter(kind=kind).first(), last_success(kind))
                          for kind in OperationRun.Kind],
        }
        return TemplateResponse(request, "admin/ingest/storage_status.html", context)
