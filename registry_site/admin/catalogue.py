"""The catalogue in the admin: packages (and their pinned default version), versions and their blobs, removed
through a confirmation page."""

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from access.auth import admin_actor
from packages_app.catalogue import pin_default_version, removal_plan, remove_versions, unpin_default_version
from packages_app.models import Package, PackageVersion, VersionBlob
from packages_app.versions import highest, sorted_versions

from .base import ADMIN_CSS, json_html, size_html


class RemoveVersionsMixin:
    """The "remove" action: a confirmation page naming the blobs that become garbage, then the catalogue's removal.

    Removal never deletes a blob itself: GC does, after its protection window. The admin's own
    delete is off, so that every removal goes through the same service as the API's DELETE.
    """

    actions = ["remove"]

    def versions_of(self, queryset):
        raise NotImplementedError

    def has_delete_permission(self, request, obj=None):
        return False

    def has_remove_permission(self, request):
        return request.user.has_perm("packages_app.delete_packageversion")

    @admin.action(permissions=["remove"], description="Remove the selected versions (blobs become garbage for GC)")
    def remove(self, request, queryset):
        versions = list(self.versions_of(queryset).select_related("package"))
        if not versions:
            self.message_user(request, "The selection has no published versions: nothing to remove.", "warning")
            return None
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Remove versions?",
                "opts": self.model._meta,
                "plan": removal_plan(versions),
                "selected": queryset.values_list("pk", flat=True),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/packages_app/remove_versions.html", context)
        garbage = remove_versions(versions, admin_actor(request))
        self.message_user(request, f"Removed {len(versions)} version(s): {', '.join(map(str, versions))}. "
                                   f"{len(garbage.digests)} blob(s) are garbage now; GC deletes them after its "
                                   "protection window.")
        return None


class PackageVersionInline(admin.TabularInline):
    model = PackageVersion
    fields = ("version", "release_version", "packaging_version", "published_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class PackageForm(forms.ModelForm):
    """The one thing of a package an operator sets by hand: which published version is its default."""

    class Meta:
        model = Package
        fields = ["pinned_version"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        versions = sorted_versions(self.instance.versions.values_list("version", flat=True))
        # Offered among the versions published now: one removed in the meantime is refused, not pinned.
        self.fields["pinned_version"] = forms.ChoiceField(
            label="Default version", required=False,
            choices=[("", f"The highest version ({highest(versions) or 'none published'})")]
                    + [(version, version) for version in reversed(versions)],
            help_text="Cosmos installs the default version when no version is asked for; pin another than the "
                      "highest when the package's version scheme changed. Removing the pinned version unpins it.",
        )


@admin.register(Package)
class PackageAdmin(RemoveVersionsMixin, admin.ModelAdmin):
    form = PackageForm
    list_display = ("name", "version_count", "pinned_version", "created_at", "updated_at")
    search_fields = ("name",)
    readonly_fields = ("name", "last_release_version", "created_at", "updated_at")
    fields = ("name", "pinned_version", "last_release_version", "created_at", "updated_at")
    inlines = [PackageVersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_count=Count("versions"))

    @admin.display(ordering="version_count", description="versions")
    def version_count(self, package):
        return package.version_count

    def versions_of(self, queryset):
        return PackageVersion.objects.filter(package__in=queryset)

    def save_model(self, request, obj, form, change):
        # Through the catalogue's service, as the API pins: under the package's lock, audited.
        if "pinned_version" not in form.changed_data:
            return
        if obj.pinned_version:
            pin_default_version(obj.name, obj.pinned_version, admin_actor(request))
        else:
            unpin_default_version(obj.name, admin_actor(request))

    # Packages appear through uploads; the row stays after removals so publication numbers keep growing.
    def has_add_permission(self, request):
        return False


class VersionBlobInline(admin.TabularInline):
    model = VersionBlob
    fields = ("role", "name", "blob", "size")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("blob")

    @admin.display(description="size")
    def size(self, link):
        return size_html(link.blob.size)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PackageVersion)
class PackageVersionAdmin(RemoveVersionsMixin, admin.ModelAdmin):
    list_display = ("package", "version", "release_version", "packaging_version", "framework", "published_at")
    list_filter = ("packaging_version", "framework")
    search_fields = ("package__name", "version", "description")
    list_select_related = ("package",)
    inlines = [VersionBlobInline]

    class Media:
        css = ADMIN_CSS

    # Versions change only through uploads: what /repo serves must be what was verified.
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in PackageVersion._meta.fields] + ["upload_jobs", "metadata_json"]

    def get_fields(self, request, obj=None):
        # The metadata as indented JSON, in its place.
        return ["metadata_json" if name == "metadata" else name for name in super().get_fields(request, obj)
                if name not in ("metadata_json", "upload_jobs")] + ["upload_jobs"]

    @admin.display(description="metadata")
    def metadata_json(self, version):
        """The package's Universe metadata, whole, as uploaded."""
        return json_html(version.metadata)

    @admin.display(description="upload jobs")
    def upload_jobs(self, version):
        jobs = version.ingest_jobs.order_by("-created_at")
        return format_html_join(
            mark_safe("<br>"), '<a href="{}">{}</a>',
            ((reverse("admin:ingest_ingestjob_change", args=[job.pk]), job) for job in jobs),
        ) or "-"

    def versions_of(self, queryset):
        return queryset

    def has_add_permission(self, request):
        return False


@admin.register(VersionBlob)
class VersionBlobAdmin(admin.ModelAdmin):
    list_display = ("version", "role", "name", "blob")
    list_filter = ("role",)
    search_fields = ("version__package__name", "name", "blob__digest")
    list_select_related = ("version__package",)
    readonly_fields = ("version", "blob", "role", "name")

    # References change only with their version: through uploads and removals.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
