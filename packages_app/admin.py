from django.conf import settings
from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from .models import Cluster, ClusterPackageRule, Package, PackageVersion, VersionBlob


class PackageVersionInline(admin.TabularInline):
    model = PackageVersion
    fields = ("version", "release_version", "packaging_version", "published_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at", "updated_at")
    search_fields = ("name",)
    inlines = [PackageVersionInline]


class VersionBlobInline(admin.TabularInline):
    model = VersionBlob
    fields = ("role", "name", "blob")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(PackageVersion)
class PackageVersionAdmin(admin.ModelAdmin):
    list_display = ("package", "version", "release_version", "packaging_version", "framework", "published_at")
    list_filter = ("packaging_version", "framework")
    search_fields = ("package__name", "version", "description")
    inlines = [VersionBlobInline]

    # Versions change only through uploads: what /repo serves must be what was verified.
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in PackageVersion._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(VersionBlob)
class VersionBlobAdmin(admin.ModelAdmin):
    list_display = ("version", "role", "name", "blob")
    list_filter = ("role",)
    search_fields = ("version__package__name", "name", "blob__digest")


class ClusterPackageRuleInline(admin.TabularInline):
    model = ClusterPackageRule
    extra = 1


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "dcos_version", "sees_all_packages", "rule_count", "repo_link", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("repo_link", "created_at", "updated_at")
    inlines = [ClusterPackageRuleInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(rule_count=Count("rules"))

    @admin.display(description="rules", ordering="rule_count")
    def rule_count(self, cluster):
        return cluster.rule_count

    @admin.display(description="repository URL")
    def repo_link(self, cluster):
        if not cluster.pk:
            return "-"
        url = settings.PUBLIC_BASE_URL.rstrip("/") + reverse("cluster-repo", kwargs={"name": cluster.name})
        return format_html('<a href="{}">{}</a>', url, url)
