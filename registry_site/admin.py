from django.contrib import admin, messages
from django.http import StreamingHttpResponse

from ingest.admin import ReadOnlyAdmin

from . import audit
from .auth import user_principal
from .models import ApiToken, AuditEvent
from .tokens import issue, revoke_token


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
        obj.created_by = user_principal(request.user).label
        plaintext = issue(obj)
        audit.record_admin(request, AuditEvent.Action.TOKEN_CREATE, str(obj), scope=obj.scope,
                           cluster=obj.cluster.name if obj.cluster else "")
        messages.warning(request, f"Token {obj.name}: {plaintext} — copy it now, it is not shown again.")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            revoke_token(token)
            audit.record_admin(request, AuditEvent.Action.TOKEN_REVOKE, str(token))
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
