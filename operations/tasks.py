"""Periodic maintenance sent by Celery beat, and the long operations the API starts (export, import)."""

from celery import shared_task

from access.audit import Actor
from operations import gc
from operations.export import export, selection
from operations.importing import import_transfer
from operations.models import OperationRun


# The task keeps its first name: beat schedules and queued messages name it so.
@shared_task(name="ingest.collect_garbage")
def collect_garbage() -> dict:
    return gc.collect().to_json()


@shared_task(name="operations.export")
def export_catalogue(run_id: int, target: str, choice: dict, since: str | None, volume_size: int | None) -> dict:
    """An export the API accepted; its run (created by the API) records the outcome."""
    run = OperationRun.objects.get(pk=run_id)
    return export(target, chosen=selection(**choice), since=since, volume_size=volume_size, run=run).to_json()


@shared_task(name="operations.import")
def import_catalogue(run_id: int, source: str, replace: bool, actor: str) -> dict:
    """An import the API accepted; its versions' jobs name the API's caller."""
    run = OperationRun.objects.get(pk=run_id)
    return import_transfer(source, replace=replace, actor=Actor(actor), run=run).to_json()
