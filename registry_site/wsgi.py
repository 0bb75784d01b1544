"""WSGI entry point; refuses to serve if the storage backend differs from the locked one."""

import os

from django.core.wsgi import get_wsgi_application

from registry_site.data_dir import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
# Before Django reads the settings: they read the data directory's key, never write it.
prepare()
application = get_wsgi_application()

from blobs.store import ensure_backend_lock  # noqa: E402  (needs the app registry loaded above)

ensure_backend_lock()
