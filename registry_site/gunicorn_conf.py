"""gunicorn settings of the run command (``--config python:registry_site.gunicorn_conf``).

Logs render like every other process's (no access log: the request middleware writes one line
per request). A worker that exits is marked dead for the multiprocess metrics, as
prometheus_client requires: its counts stay in the totals, it no longer counts as live.
"""

import os

from prometheus_client import multiprocess

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

from django.conf import settings  # noqa: E402  (needs the settings module named above)

from telemetry.logs import logging_config  # noqa: E402

logconfig_dict = logging_config(**settings.LOGGING)
accesslog = None


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
