"""What every admin page of the registry shares: its index and read-only rows."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

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
