"""Runs of the maintenance commands, as they recorded themselves."""

from django.contrib import admin

from operations.models import OperationRun

from .base import ADMIN_CSS, ReadOnlyAdmin, outcome_html


@admin.register(OperationRun)
class OperationRunAdmin(ReadOnlyAdmin):
    list_display = ("kind", "target", "started_at", "finished_at", "succeeded")
    list_filter = ("kind", "succeeded")
    fields = ("kind", "target", "started_at", "finished_at", "succeeded", "outcome")
    readonly_fields = fields

    class Media:
        css = ADMIN_CSS

    @admin.display(description="outcome")
    def outcome(self, run):
        """What the run reported (GC: blobs and bytes deleted and held back), or its error."""
        return outcome_html(run.summary)
