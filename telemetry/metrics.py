"""The registry's Prometheus counters and histograms, counted where things happen, in whichever process.

With ``PROMETHEUS_MULTIPROC_DIR`` set (the run command sets it), each process writes its values
to a file there and a scrape adds them up, so ``/metrics`` of any web worker shows the counts of
all web and Celery worker processes of the host. The state read at scrape time (jobs, blobs, disk,
broker) is collected by ``registry_site.metrics``.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess, start_http_server

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "registry_http_requests", "HTTP requests answered, by method, URL pattern, status and the cluster they were "
    "made for (empty when for none).", ["method", "route", "status", "cluster"],
)
HTTP_REQUEST_DURATION = Histogram(
    "registry_http_request_duration_seconds", "Time to answer an HTTP request (until the response is returned; "
    "a streamed body may take longer), by method and URL pattern.", ["method", "route"],
)
INGEST_STAGE_DURATION = Histogram(
    "registry_ingest_stage_duration_seconds", "Time an ingest stage took, from its start to its end (a fanned-out "
    "stage counts from its first to its last task).", ["stage"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf")),
)
INGEST_BUNDLE_BYTES = Counter(
    "registry_ingest_bundle_bytes", "Bytes of uploaded bundles read and hashed by the receive stage.",
)
INGEST_JOBS_FINISHED = Counter(
    "registry_ingest_jobs_finished", "Ingest jobs that ended, by outcome (succeeded, failed, cancelled) and error "
    "code (empty unless failed).", ["outcome", "error_code"],
)
INGEST_ARRIVED_LAYERS = Counter(
    "registry_ingest_arrived_layers", "Layers checked while their bundle was still being uploaded, by how the check "
    "ended: stored (the job takes it if it is the member the bundle names), refused (the job checks it itself).",
    ["outcome"],
)
INGEST_TASKS_RESENT = Counter(
    "registry_ingest_tasks_resent", "Ingest jobs whose next task was sent again: it waited longer than "
    "INGEST_REDISPATCH_AFTER_SECONDS (the broker lost it, or no worker took it).",
)
INGEST_OUTAGE_RETRIES = Counter(
    "registry_ingest_outage_retries", "Ingest task attempts cut short by an outage, to be run again after a "
    "back-off, by the component that was away (database, blob store).", ["component"],
)
BLOB_DEDUPLICATED_BYTES = Counter(
    "registry_blob_deduplicated_bytes", "Bytes of blobs ingest verified but did not write: the store held them already.",
)


def count_request(method: str, route: str, status: int, seconds: float, cluster: str = "") -> None:
    HTTP_REQUESTS.labels(method, route, str(status), cluster).inc()
    HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)


def count_finished_job(outcome: str, error_code: str = "") -> None:
    INGEST_JOBS_FINISHED.labels(outcome, error_code).inc()


class _ThisProcess:
    """The default registry's metrics, for a single process (no multiprocess directory)."""

    def collect(self):
        return REGISTRY.collect()


def process_metrics_registry() -> CollectorRegistry:
    """The counters and histograms: of every process of the host in multiprocess mode, else of this one."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    return registry


def serve_worker_metrics(port: int) -> None:
    """Expose the counters of this host's worker processes on ``port`` (a worker in its own container).

    The state gauges are left to the web's /metrics, so several workers do not report them twice.
    """
    if not os.environ.get(MULTIPROC_ENV):
        raise SystemExit(f"WORKER_METRICS_PORT={port} needs {MULTIPROC_ENV} (a directory the worker's processes "
                         "share): without it the pool processes' counts would not be seen.")
    start_http_server(port, registry=process_metrics_registry())
    logger.info("Worker metrics on port %d", port)
