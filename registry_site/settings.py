"""Settings, read from the environment (12-factor).

Every variable is listed in the README's settings table. With none set the registry runs on
embedded defaults that need nothing installed: SQLite, blobs and a filesystem Celery broker,
all under ``REGISTRY_DATA_DIR``. Reading them writes nothing: the data directory and its key are
prepared by the program that starts (``registry_site.data_dir``), the folders below are created
at start-up (``LOCAL_FOLDERS``).
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

from dcos_bundle.flags import parse_bool
from registry_site.data_dir import data_dir, kept_secret_key


def env_bool(name: str, default: bool) -> bool:
    return parse_bool(os.environ.get(name), name, default)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a whole number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(choices)}.")
    return value


def env_networks(name: str, default: list[str]) -> list[str]:
    """IP networks (``10.0.0.0/8``, or one address) as written; a malformed one stops the start."""
    networks = env_list(name, default)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(f"{name}: {network!r} is not an IP network such as 10.0.0.0/8 or fd00::/8.") from None
    return networks


DATA_DIR = data_dir()
# The configured key, or the one generated once into the data directory when a program started.
SECRET_KEY = os.environ.get("SECRET_KEY") or kept_secret_key(DATA_DIR)
DEBUG = env_bool("DEBUG", False)

PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS",
    sorted({urlsplit(PUBLIC_BASE_URL).hostname or "127.0.0.1", "127.0.0.1", "localhost"}),
)
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]

# An outage of the database or the blob store answers 503 with this Retry-After.
OUTAGE_RETRY_AFTER_SECONDS = env_int("OUTAGE_RETRY_AFTER_SECONDS", 10)

# Largest JSON request body of the API (bundles and chunks have their own limits).
API_MAX_JSON_BYTES = env_int("API_MAX_JSON_BYTES", 1024 * 1024)

# Browsers: cookies only over HTTPS when the registry is served over it; no framing, no sniffing.
SECURE_COOKIES = PUBLIC_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
# Behind Admin Router or another TLS-terminating proxy that sets X-Forwarded-Proto.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Reads of the catalogue, /repo, /resource and /v2 need no token while this is on (the cluster network is
# trusted); off, every read needs a token and a cluster's token sees only that cluster's packages.
ANONYMOUS_READS = env_bool("ANONYMOUS_READS", True)
# New uploads (bundles and upload sessions) a token or user may start per minute; 0: no limit.
UPLOADS_PER_MINUTE = env_int("UPLOADS_PER_MINUTE", 30)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    # The registry's layers, top first; each imports only those below it (see docs/architecture.md).
    "registry_site",
    "portal",
    "operations",
    "ingest",
    "packages_app",
    "access",
    "blobs",
]

MIDDLEWARE = [
    # Outermost: it times and logs the whole request.
    "registry_site.middleware.RequestMetricsMiddleware",
    "registry_site.middleware.ClientAddressMiddleware",
    "registry_site.middleware.RefuseNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry_site.urls"
WSGI_APPLICATION = "registry_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'registry.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web server and a worker share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Failed admin logins are counted per user name and per address (django-axes, in the database, so across
# processes); past AXES_FAILURE_LIMIT either is locked out for LOGIN_LOCKOUT_MINUTES, even with the right password.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"  # filled by collectstatic, served by WhiteNoise

# Folders every process needs, created at start-up by RegistrySiteConfig.ready() (staging's are created
# as uploads arrive).
LOCAL_FOLDERS = [DATA_DIR, STATIC_ROOT]

# Blob storage: where the content-addressed blobs live. Locked at first start.
STORAGE_URL = os.environ.get("STORAGE_URL") or (DATA_DIR / "storage").as_uri()
S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None
S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID") or None
S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY") or None
S3_REGION = os.environ.get("S3_REGION") or None

# Blob downloads (/v2/.../blobs/..., /resource/...). With S3 storage a GET answers 307 to a presigned URL of the
# object, valid this many seconds (distribution's 20 minutes): the bytes go from S3 to the client. Presigned URLs
# name S3_PUBLIC_ENDPOINT_URL when clients reach S3 at another address than this process does.
S3_REDIRECT_DOWNLOADS = env_bool("S3_REDIRECT_DOWNLOADS", True)
S3_REDIRECT_SECONDS = env_int("S3_REDIRECT_SECONDS", 1200)
S3_PUBLIC_ENDPOINT_URL = os.environ.get("S3_PUBLIC_ENDPOINT_URL") or None
# Set by the run command for the gunicorn it puts behind its nginx (registry_site/front.py), on a socket only
# nginx reaches: the client address comes from nginx's X-Real-IP, and local blobs are sent by nginx
# (X-Accel-Redirect) once the view has decided.
SERVED_BY_NGINX = env_bool("SERVED_BY_NGINX", False)
# nginx's bounds on slow clients: seconds to send a request's headers, between two reads of its body, between two
# writes of an answer, and of an idle keep-alive connection.
CLIENT_HEADER_TIMEOUT_SECONDS = env_int("CLIENT_HEADER_TIMEOUT_SECONDS", 10)
CLIENT_BODY_TIMEOUT_SECONDS = env_int("CLIENT_BODY_TIMEOUT_SECONDS", 30)
SEND_TIMEOUT_SECONDS = env_int("SEND_TIMEOUT_SECONDS", 60)
KEEPALIVE_TIMEOUT_SECONDS = env_int("KEEPALIVE_TIMEOUT_SECONDS", 15)
# nginx processes per web task; each holds thousands of connections and sends files with sendfile.
NGINX_WORKER_PROCESSES = env_int("NGINX_WORKER_PROCESSES", 2)

# Readiness fails (and later, uploads are refused) below this many free bytes.
DISK_FREE_THRESHOLD_BYTES = env_int("DISK_FREE_THRESHOLD_BYTES", 1024**3)

# Celery: a broker that needs no server unless one is configured.
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://localhost/"
if CELERY_BROKER_URL.startswith("filesystem://"):
    LOCAL_FOLDERS += [BROKER_DIR / "queue", BROKER_DIR / "control"]
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task of a worker that died is delivered again after this many seconds (tasks are idempotent)...
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 1800),
        # ...looked for every 10 seconds (kombu's default looks only every tenth time).
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# How often beat sends the ingest jobs' lost tasks again and reaps the stuck ones.
INGEST_SWEEP_INTERVAL_SECONDS = env_int("INGEST_SWEEP_INTERVAL_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "redispatch-ingest-jobs": {"task": "ingest.redispatch_jobs", "schedule": float(INGEST_SWEEP_INTERVAL_SECONDS)},
    "reap-stuck-ingest-jobs": {"task": "ingest.reap_stuck_jobs", "schedule": float(INGEST_SWEEP_INTERVAL_SECONDS)},
    "collect-garbage": {"task": "ingest.collect_garbage", "schedule": 6 * 3600.0},
}
# Garbage (unused blobs, abandoned staging and writes) younger than this is never collected.
GC_PROTECTION_SECONDS = env_int("GC_PROTECTION_SECONDS", 6 * 3600)
# GC deletes no blob while a backup or storage migration runs; a run unfinished for longer is presumed crashed.
MAINTENANCE_GUARD_SECONDS = env_int("MAINTENANCE_GUARD_SECONDS", 24 * 3600)

# A running ingest job with no heartbeat for this long is failed by the reaper.
INGEST_STUCK_AFTER_SECONDS = env_int("INGEST_STUCK_AFTER_SECONDS", 900)
# A queued job not taken, or a running one without a heartbeat, for this long has its next task sent again
# (a broker restarted without persistence loses tasks). Keep it above the outage retries' span (about 2 minutes).
INGEST_REDISPATCH_AFTER_SECONDS = env_int("INGEST_REDISPATCH_AFTER_SECONDS", 300)
# An outage of the database or the blob store makes an ingest task run again after 1, 2, 4, ... seconds, at most
# INGEST_OUTAGE_BACKOFF_MAX_SECONDS apart (keep it below CELERY_VISIBILITY_TIMEOUT), this many times; only then
# does it fail the job (service_unavailable, retryable). Defaults: 8 retries over about 2 minutes.
INGEST_OUTAGE_RETRIES = env_int("INGEST_OUTAGE_RETRIES", 8)
INGEST_OUTAGE_BACKOFF_MAX_SECONDS = env_int("INGEST_OUTAGE_BACKOFF_MAX_SECONDS", 30)

# Uploads are staged here until their job finishes; web and workers must share it.
STAGING_DIR = Path(os.environ.get("STAGING_DIR") or DATA_DIR / "staging").resolve()
# Largest bundle accepted (bytes); a larger upload is refused with 413 before it is read.
MAX_BUNDLE_BYTES = env_int("MAX_BUNDLE_BYTES", 64 * 1024**3)
# Limits of the inspect stage: members, uncompressed sizes, compression ratio.
INGEST_MAX_MEMBERS = env_int("INGEST_MAX_MEMBERS", 100_000)
INGEST_MAX_MEMBER_BYTES = env_int("INGEST_MAX_MEMBER_BYTES", 64 * 1024**3)
INGEST_MAX_TOTAL_BYTES = env_int("INGEST_MAX_TOTAL_BYTES", 256 * 1024**3)
INGEST_MAX_COMPRESSION_RATIO = env_int("INGEST_MAX_COMPRESSION_RATIO", 200)
# A web process rechecks the catalogue for /repo at most this often (its own changes: at once).
REPO_FRESHNESS_SECONDS = float(os.environ.get("REPO_FRESHNESS_SECONDS") or 1.0)
# Layers of at least this many bytes are checked by a worker as soon as they arrived, while the rest of the bundle
# is still being uploaded (ingest.arrivals); smaller ones are not worth a task of their own.
INGEST_ARRIVAL_MIN_BYTES = env_int("INGEST_ARRIVAL_MIN_BYTES", 1024 * 1024)
# How often running stages write their progress (and heartbeat), in seconds.
INGEST_PROGRESS_INTERVAL = float(os.environ.get("INGEST_PROGRESS_INTERVAL") or 0.5)

REST_FRAMEWORK = {
    # JSON first; a browser asking for HTML gets the browsable API over the same views and rules.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": ["registry_site.api.LimitedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "registry_site.api.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": ["access.auth.RegistryAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["access.auth.ScopePermission"],
    "UNAUTHENTICATED_USER": "access.auth.anonymous",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DC/OS Package Registry API",
    "DESCRIPTION": "Upload bundles, follow ingest jobs, browse and manage the catalogue.",
    "VERSION": "1",
    # The docs page works in an air-gapped network: its scripts are served from here.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Logs: one line per event, rendered by structlog (telemetry/logs.py). JSON unless LOG_FORMAT says
# otherwise; the run command sets console for its children.
LOG_FORMAT = os.environ.get("LOG_FORMAT") or "json"
if LOG_FORMAT not in ("json", "console"):
    raise ValueError(f"LOG_FORMAT={LOG_FORMAT!r}: expected json or console.")
LOGGING_CONFIG = "telemetry.logs.configure"
LOGGING = {"format": LOG_FORMAT, "level": os.environ.get("LOG_LEVEL", "INFO")}

# A worker in its own container serves its processes' metrics on this port (0: off).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)

# Who may read /metrics, which names clusters, routes and error codes (access/exposure.py): "network" serves the
# requests that come, and were forwarded by any proxy, from METRICS_ALLOWED_NETWORKS; "token" needs a token
# without a cluster (or a logged-in user); "open" serves anyone.
METRICS_ACCESS = env_choice("METRICS_ACCESS", ("network", "token", "open"), "network")
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", [
    "127.0.0.0/8", "::1/128",  # this host
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",  # private networks (RFC 1918, RFC 4193)
    "9.0.0.0/8",  # DC/OS's default overlay network, "dcos"
])
