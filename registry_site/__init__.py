"""The site: settings, URLs, WSGI, the admin, /metrics, health, the Celery app and the run command.
The top layer: may import every other project package.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
