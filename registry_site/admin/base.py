"""What every admin page of the registry shares: its title and site link, its index, read-only rows, and how
values show: sizes in human units, documents as indented JSON, run outcomes as tables."""

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from dcos_bundle.sizes import human_size

admin.site.site_header = "DC/OS Package Registry"
admin.site.site_title = "DC/OS Package Registry admin"
admin.site.index_title = "Administration"
# "View site": the catalogue's pages.
admin.site.site_url = "/"
# The lists get the whole width: the job list's columns fit 1280 px (the index lists every model).
admin.site.enable_nav_sidebar = False
# The admin index links the storage status page.
admin.site.index_template = "admin/registry_index.html"
# The registry's styles for the pages that show sizes, JSON and live progress (a ModelAdmin's Media).
ADMIN_CSS = {"all": ("registry/admin.css",)}


def admin_link(obj) -> str:
    if obj is None:
        return "-"
    meta = obj._meta
    return format_html('<a href="{}">{}</a>', reverse(f"admin:{meta.app_label}_{meta.model_name}_change",
                                                      args=[obj.pk]), obj)


def size_html(count: int | None) -> str:
    """A size in human units, the exact count on hover."""
    if count is None:
        return "-"
    return format_html('<span title="{} bytes">{}</span>', f"{count:,}", human_size(count))


def json_html(document) -> str:
    """A JSON document indented, as the package or the run wrote it."""
    if document in (None, {}, []):
        return "-"
    return format_html('<pre class="registry-json">{}</pre>', json.dumps(document, indent=2, ensure_ascii=False))


def outcome_html(summary) -> str:
    """A run's or job's summary as a table of its counts (sizes in human units); nested values as JSON."""
    if not isinstance(summary, dict) or not summary:
        return json_html(summary)

    def value_html(key: str, value) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("bytes"):
            return size_html(value)
        if isinstance(value, (dict, list)):
            return json_html(value)
        return format_html("{}", value)

    rows = format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>',
                            ((key.replace("_", " "), value_html(key, value)) for key, value in summary.items()))
    return format_html('<table class="registry-outcome">{}</table>', rows)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the registry writes itself; editing them by hand would break what they record."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
