"""Blobs with their references, and the storage lock with its status page."""

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Sum
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from blobs.models import Blob, StorageBackend
from blobs.store import blob_store, free_disk, low_disk
from operations.models import OperationRun
from operations.runs import last_success

from .base import ReadOnlyAdmin, admin_link, outcome_html, size_html


@admin.register(Blob)
class BlobAdmin(ReadOnlyAdmin):
    list_display = ("digest", "human_size", "media_type", "reference_count", "created_at")
    search_fields = ("digest",)
    list_filter = ("media_type",)
    fields = ("digest", "human_size", "media_type", "created_at", "reference_count", "referencing_versions")
    readonly_fields = fields

    @admin.display(ordering="size", description="size")
    def human_size(self, blob):
        return size_html(blob.size)

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
        return [path("status/", self.admin_site.admin_view(self.status_view), name="blobs_storage_status"),
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
            "last_runs": [(kind.label, last, outcome_html(last.summary) if last else "", last_success(kind))
                          for kind in OperationRun.Kind
                          for last in [OperationRun.objects.filter(kind=kind).first()]],
        }
        return TemplateResponse(request, "admin/blobs/storage_status.html", context)
