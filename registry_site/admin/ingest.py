"""Ingest jobs (live progress, retry, cancel) and resumable upload sessions."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from access.auth import admin_actor
from dcos_bundle.errors import RegistryError
from dcos_bundle.sizes import human_size
from ingest import services
from ingest.models import IngestJob, JobStage, UploadSession

from .base import ADMIN_CSS, admin_link, json_html, size_html


class JobStageInline(admin.TabularInline):
    model = JobStage
    fields = ("stage", "done", "total", "percent", "started_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="done")
    def done(self, stage):
        return size_html(stage.bytes_done)

    @admin.display(description="total")
    def total(self, stage):
        return size_html(stage.bytes_total)
    # Rows marked with their stage, so that registry/job_progress.js updates them from the job API.
    template = "admin/ingest/ingestjob/stages_inline.html"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    # Fits 1280 px: ids shortened to their first 8 characters (the whole id is on the job's page and in search).
    list_display = (
        "short_id", "bundle_name", "package", "state", "progress", "error_code", "created_at", "duration",
    )
    list_display_links = ("short_id",)
    list_filter = ("state", "stage", "error_code", "cluster")
    search_fields = ("id", "bundle_name", "bundle_digest", "package_name", "created_by")
    list_select_related = ("package_version__package",)
    fieldsets = [
        (None, {"fields": ("id", "state", "stage", "progress", "version_link", "bundle_name", "bundle_human_size",
                           "bundle_digest", "expected_digest", "replace", "package_name", "version", "created_by",
                           "cluster")}),
        ("Error", {"fields": ("error_code", "error_message", "error_details_json", "internal_cause")}),
        ("Timings", {"fields": ("created_at", "started_at", "heartbeat_at", "finished_at", "duration")}),
        ("Staging", {"fields": ("staging_path",)}),
    ]
    readonly_fields = [field.name for field in IngestJob._meta.fields] + [
        "short_id", "progress", "version_link", "duration", "bundle_human_size", "error_details_json"]
    inlines = [JobStageInline]
    actions = ["retry", "cancel"]
    change_form_template = "admin/ingest/ingestjob/change_form.html"

    class Media:
        css = ADMIN_CSS

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        # The page asks the job API for the job's progress (as the session's user) and updates itself.
        if obj is not None:
            context["job_api_url"] = reverse("job-detail", args=[obj.pk])
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    @admin.display(description="id", ordering="id")
    def short_id(self, job):
        return format_html('<code title="{}">{}</code>', job.pk, str(job.pk)[:8])

    @admin.display(description="bundle size", ordering="bundle_size")
    def bundle_human_size(self, job):
        return size_html(job.bundle_size)

    @admin.display(description="error details")
    def error_details_json(self, job):
        return json_html(job.error_details)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("stages")

    @admin.display(description="progress")
    def progress(self, job):
        """The current stage's bytes and percent (every stage's are in the table below the job)."""
        stage = next((stage for stage in job.stages.all() if stage.stage == job.stage), None)
        if stage is None:
            return "-"
        if not stage.bytes_total:
            return f"{stage} ({stage.percent}%)"  # a stage that counts no bytes (validate, publish)
        return f"{stage}: {human_size(stage.bytes_done)} of {human_size(stage.bytes_total)} ({stage.percent}%)"

    @admin.display(description="package", ordering="package_name")
    def package(self, job):
        """The published version, linked; before (or without) one, the name and version the bundle declared."""
        if job.package_version is not None:
            return admin_link(job.package_version)
        return f"{job.package_name} {job.version}".strip() or "-"

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
    list_display = ("short_id", "file_name", "state", "received", "created_by", "cluster", "created_at", "updated_at")
    list_display_links = ("short_id",)
    list_filter = ("state", "cluster")
    readonly_fields = [field.name for field in UploadSession._meta.fields] + ["received"]

    class Media:
        css = ADMIN_CSS

    @admin.display(description="id", ordering="id")
    def short_id(self, session):
        return format_html('<code title="{}">{}</code>', session.pk, str(session.pk)[:8])

    @admin.display(description="received", ordering="offset")
    def received(self, session):
        return format_html("{} of {}", size_html(session.offset), size_html(session.size))

    def has_add_permission(self, request):
        return False
