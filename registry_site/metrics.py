"""``/metrics``: the counters of every process of the host, plus the registry's state read at scrape time.

The state (jobs by state and stage, blobs, disk, broker queue, last maintenance runs) is read by
``RegistryStateCollector`` from the database, the disk and the broker, never kept in a process,
so every scrape answers the same whichever process serves it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu.exceptions import ChannelError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily

from access.auth import WWW_AUTHENTICATE
from access.exposure import check_metrics_reader
from blobs.models import Blob
from blobs.store import free_disk
from dcos_bundle.errors import RegistryError
from ingest.models import IngestJob
from ingest.tasks import stuck_jobs
from operations.models import OperationRun
from operations.runs import last_success
from telemetry.metrics import process_metrics_registry

from .celery import app as celery_app

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 3


class RegistryStateCollector:
    """Gauges of the registry's state, read when Prometheus scrapes."""

    def collect(self):
        yield from self._jobs()
        yield from self._blobs()
        yield from self._disk()
        yield from self._broker()
        yield from self._operations()

    def _jobs(self):
        by_state = GaugeMetricFamily("registry_ingest_jobs", "Ingest jobs by state.", labels=["state"])
        counts = dict(IngestJob.objects.values_list("state").annotate(Count("pk")).order_by())
        for state in IngestJob.State.values:
            by_state.add_metric([state], counts.get(state, 0))
        yield by_state

        by_stage = GaugeMetricFamily("registry_ingest_running_jobs", "Running ingest jobs by their current stage.",
                                     labels=["stage"])
        running = dict(IngestJob.objects.filter(state=IngestJob.State.RUNNING)
                       .values_list("stage").annotate(Count("pk")).order_by())
        for stage in IngestJob.Stage.values:
            by_stage.add_metric([stage], running.get(stage, 0))
        yield by_stage

        yield GaugeMetricFamily(
            "registry_ingest_stuck_jobs", "Running ingest jobs without a heartbeat for INGEST_STUCK_AFTER_SECONDS "
            "(the reaper fails them within a minute).", value=stuck_jobs().count(),
        )

    def _blobs(self):
        totals = Blob.objects.aggregate(count=Count("pk"), size=Sum("size"))
        yield GaugeMetricFamily("registry_blobs_stored", "Blobs recorded in the blob store.", value=totals["count"])
        yield GaugeMetricFamily("registry_storage_used_bytes", "Bytes of the blobs recorded in the blob store "
                                "(from the database, not a listing of the store).", value=totals["size"] or 0)

    def _disk(self):
        threshold = settings.DISK_FREE_THRESHOLD_BYTES
        free = GaugeMetricFamily("registry_disk_free_bytes", "Free bytes where uploads land: data_dir (staging) and, "
                                 "for local storage, blob_store.", labels=["place"])
        low = GaugeMetricFamily("registry_disk_low", "1 while the place has less free space than "
                                "DISK_FREE_THRESHOLD_BYTES (uploads are refused), else 0.", labels=["place"])
        for place, free_bytes in free_disk().items():
            free.add_metric([place], free_bytes)
            low.add_metric([place], 1 if free_bytes < threshold else 0)
        yield free
        yield low
        yield GaugeMetricFamily("registry_disk_free_threshold_bytes", "DISK_FREE_THRESHOLD_BYTES.", value=threshold)

    def _broker(self):
        depth = GaugeMetricFamily("registry_broker_queue_messages", "Tasks waiting in the broker queue.",
                                  labels=["queue"])
        try:
            for queue, messages in broker_queue_depths().items():
                depth.add_metric([queue], messages)
            up = 1
        except Exception as error:  # a broker outage is reported as a gauge, never breaks the scrape
            logger.warning("Broker queue depth unavailable: %s: %s", type(error).__name__, error)
            up = 0
        yield GaugeMetricFamily("registry_broker_up", "1 if the broker answered the queue depth query, else 0.",
                                value=up)
        if up:
            yield depth

    def _operations(self):
        family = GaugeMetricFamily(
            "registry_operation_last_success_timestamp_seconds", "Unix time the last successful run of a maintenance "
            "operation finished (no series for an operation that never succeeded).", labels=["operation"],
        )
        for kind in OperationRun.Kind.values:
            run = last_success(kind)
            if run is not None:
                family.add_metric([kind], run.finished_at.timestamp())
        yield family


def broker_queue_depths() -> dict[str, int]:
    """Messages waiting in each queue the workers consume, as the broker's transport counts them.

    kombu's passive ``queue_declare`` answers for every transport: LLEN of the queue's lists on
    Redis, the message files on the filesystem transport, the broker's own count on AMQP.
    """
    depths = {}
    with celery_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
        for queue in celery_app.amqp.queues:
            with conn.channel() as channel:
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:
                    depths[queue] = 0  # Redis keeps no empty queue: not declared means nothing waits
    return depths


def exposition() -> bytes:
    registry = process_metrics_registry()
    registry.register(RegistryStateCollector())
    return generate_latest(registry)


@never_cache
@require_safe
def metrics_view(request):
    """The exposition, for whom METRICS_ACCESS lets read it."""
    try:
        check_metrics_reader(request)
    except RegistryError as error:
        response = JsonResponse(error.to_json(), status=error.status)
        if error.status == 401:
            response["WWW-Authenticate"] = WWW_AUTHENTICATE
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
