"""One log format for every process: structlog renders every line, also those of stdlib loggers.

Django, Celery, gunicorn and the ``logging.getLogger(__name__)`` loggers of the code all pass
through structlog's ``ProcessorFormatter``, so each line has the same fields: ``timestamp``,
``level``, ``logger``, ``event``, plus the context bound with ``structlog.contextvars`` (an
ingest job's ``job_id``, ``package`` and ``version``) and what the call added.

``json`` writes one JSON object a line (production); ``console`` writes aligned, readable lines
(the embedded run command).
"""

from __future__ import annotations

import logging.config
import sys

import structlog

LOG_FORMATS = ("json", "console")

# What every line gets, whether it was logged through structlog or a stdlib logger.
SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: ``log_format`` is json or console."""
    if log_format == "json":
        rendering = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        rendering = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )


def logging_config(format: str, level: str) -> dict:
    """A ``logging.config.dictConfig`` configuration: one stderr handler rendering through structlog."""
    handler = {"handlers": ["structured"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "log_format": format}},
        "handlers": {
            "structured": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["structured"], "level": level},
        "loggers": {
            # gunicorn's own loggers do not propagate by default; its access log is replaced by the
            # request middleware's line (registry_site.middleware), so there is one line per request.
            "gunicorn.error": handler,
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure(options: dict) -> None:
    """Django's LOGGING_CONFIG: ``options`` is settings.LOGGING, ``{"format": ..., "level": ...}``."""
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(logging_config(**options))
