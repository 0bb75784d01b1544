"""Periodic maintenance sent by Celery beat."""

from celery import shared_task

from operations import gc


# The task keeps its first name: beat schedules and queued messages name it so.
@shared_task(name="ingest.collect_garbage")
def collect_garbage() -> dict:
    return gc.collect().to_json()
