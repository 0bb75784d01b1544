"""Runs of the maintenance commands, as they recorded themselves."""

from django.contrib import admin

from operations.models import OperationRun

from .base import ReadOnlyAdmin


@admin.register(OperationRun)
class OperationRunAdmin(ReadOnlyAdmin):
    list_display = ("kind", "target", "started_at", "finished_at", "succeeded")
    list_filter = ("kind", "succeeded")
    readonly_fields = [field.name for field in OperationRun._meta.fields]
