"""gunicorn settings of the run command (``--config python:registry_site.gunicorn_conf``).

Logs render like every other process's (no access log: the request middleware writes one line
per request). A worker that exits is marked dead for the multiprocess metrics, as
prometheus_client requires: its counts stay in the totals, it no longer counts as live.
"""

import os

from django.conf import settings
from prometheus_client import multiprocess

from registry_site.data_dir import prepare
from telemetry.logs import logging_config

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
# The settings are read here, in gunicorn's master, before its workers fork: the data directory's key
# must exist by then.
prepare()
logconfig_dict = logging_config(**settings.LOGGING)
accesslog = None


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
