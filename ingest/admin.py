from django.contrib import admin
from django.db.models import Count

from .models import Blob, IngestJob, JobStage, StorageBackend, UploadSession


@admin.register(Blob)
class BlobAdmin(admin.ModelAdmin):
    list_display = ("digest", "size", "media_type", "reference_count", "created_at")
    search_fields = ("digest",)
    list_filter = ("media_type",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(reference_count=Count("references"))

    @admin.display(ordering="reference_count", description="references")
    def reference_count(self, blob):
        return blob.reference_count


class JobStageInline(admin.TabularInline):
    model = JobStage
    fields = ("stage", "bytes_done", "bytes_total", "percent", "started_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = (
        "id", "bundle_name", "package_name", "version", "state", "stage", "error_code", "created_at", "finished_at",
    )
    list_filter = ("state", "stage", "error_code")
    search_fields = ("id", "bundle_name", "bundle_digest", "package_name")
    readonly_fields = [field.name for field in IngestJob._meta.fields]
    inlines = [JobStageInline]


@admin.register(UploadSession)
class UploadSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "file_name", "state", "offset", "size", "created_at", "updated_at")
    list_filter = ("state",)
    readonly_fields = [field.name for field in UploadSession._meta.fields]


@admin.register(StorageBackend)
class StorageBackendAdmin(admin.ModelAdmin):
    list_display = ("kind", "identity", "locked_at")
    readonly_fields = ("kind", "identity", "locked_at")

    # The lock changes only through migrate_storage, never by hand.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
