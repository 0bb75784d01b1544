"""Clusters and their rules, API tokens, and the audit log (read-only, with CSV export)."""

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils.html import format_html

from access import audit
from access.auth import admin_actor
from access.clusters import remove_cluster, save_cluster
from access.models import ApiToken, AuditEvent, Cluster, ClusterPackageRule
from access.tokens import issue, revoke_token

from .base import ReadOnlyAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "key_id", "scope", "cluster", "created_by", "created_at", "last_used_at", "expires_at",
                    "revoked_at")
    list_filter = ("scope", "cluster", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "key_id", "created_by")
    actions = ["revoke"]
    fields = ("name", "scope", "cluster", "expires_at")

    # A token is created here and revoked here; nothing about it is edited afterwards.
    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("name", "key_id", "scope", "cluster", "created_by", "created_at", "expires_at", "last_used_at",
                "revoked_at")

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        plaintext = issue(obj, admin_actor(request))
        messages.warning(request, f"Token {obj.name}: {plaintext} — copy it now, it is not shown again.")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        actor = admin_actor(request)
        for token in queryset.filter(revoked_at__isnull=True):
            revoke_token(token, actor)
            messages.success(request, f"Revoked {token}.")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The log is a record: nobody edits or deletes it from here."""

    list_display = ("created_at", "actor", "action", "target", "cluster", "remote_addr")
    list_filter = ("action", "cluster")
    search_fields = ("actor", "target")
    date_hierarchy = "created_at"
    actions = ["export_csv"]

    @admin.action(description="Export the selected events as CSV")
    def export_csv(self, request, queryset):
        response = StreamingHttpResponse(audit.export_csv(queryset.iterator()), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response


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

    # The cluster and its rules are saved together, by the service the API uses (which logs the change).
    def save_model(self, request, obj, form, change):
        pass

    def save_related(self, request, form, formsets, change):
        [rule_forms] = formsets
        rule_forms.save(commit=False)  # only for the admin's own change message: the service saves the rules
        rules = [{"package_name": rule.cleaned_data["package_name"], "versions": rule.cleaned_data["versions"]}
                 for rule in rule_forms.forms if rule.cleaned_data and not rule.cleaned_data.get("DELETE")]
        save_cluster(form.instance, {"rules": rules}, admin_actor(request))

    def delete_model(self, request, cluster):
        remove_cluster(cluster, admin_actor(request))

    def delete_queryset(self, request, queryset):
        for cluster in queryset:
            self.delete_model(request, cluster)

    @admin.display(description="rules", ordering="rule_count")
    def rule_count(self, cluster):
        return cluster.rule_count

    @admin.display(description="repository URL")
    def repo_link(self, cluster):
        if not cluster.pk:
            return "-"
        url = settings.PUBLIC_BASE_URL.rstrip("/") + reverse("cluster-repo", kwargs={"name": cluster.name})
        return format_html('<a href="{}">{}</a>', url, url)
