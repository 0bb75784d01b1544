"""One log line and the request metrics for every HTTP request; requests naming a NUL refused before any view; the
client's address behind the run command's nginx."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

import structlog
from django.conf import settings
from django.http import JsonResponse

from dcos_bundle.errors import ErrorCode
from telemetry import metrics

logger = structlog.get_logger("registry_site.requests")

# `<repository:name>` and `(?P<name>[^/]+)` -> `<name>`: the route label names the URL pattern,
# never a value from the path.
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")
UNMATCHED_ROUTE = "<unmatched>"
# Any other method (a client may send anything) is counted as "other": labels stay bounded.
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Scrapes are left out of the metrics and the log: Prometheus records each scrape itself (`up`,
# `scrape_duration_seconds`), and a line every 15 seconds would bury the requests that matter. A refused
# request to them is counted and logged like any other: it is no scrape, and someone may be probing.
UNOBSERVED_URL_NAMES = {"metrics"}


def route_of(request) -> str:
    match = request.resolver_match
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    route = _PARAMETER.sub(lambda parameter: f"<{parameter[1] or parameter[2]}>", match.route)
    return route.replace("^", "").replace("$", "")


def bytes_sent(response) -> int | None:
    if response.has_header("Content-Length"):
        return int(response["Content-Length"])
    if response.streaming:
        return None  # known only once the server has sent it all
    return len(response.content)


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        match = request.resolver_match
        if match is not None and match.url_name in UNOBSERVED_URL_NAMES and response.status_code < 400:
            return response
        route = route_of(request)
        method = request.method if request.method in KNOWN_METHODS else "other"
        # Set by the views when a request is made for a cluster (its repository, or a token bound to it).
        cluster = getattr(request, "registry_cluster", "")
        metrics.count_request(method, route, response.status_code, seconds, cluster)
        logger.info(
            "request", method=request.method, path=request.path, route=route, status=response.status_code,
            duration_ms=round(seconds * 1000, 1), bytes=bytes_sent(response), **({"cluster": cluster} if cluster else {}),
        )
        return response


class RefuseNulMiddleware:
    """A path or query string holding NUL (``%00``) names nothing here: PostgreSQL text cannot hold the character,
    so no package, version, job, cluster or token has it. Answered 400 before any view queries the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\0" in request.path_info or "\0" in unquote(request.META.get("QUERY_STRING", "")):
            where = "path" if "\0" in request.path_info else "query string"
            return JsonResponse({"code": ErrorCode.INVALID_REQUEST, "message": f"The request's {where} holds a NUL "
                                 "character (%00), which nothing in this registry can contain.", "details": {}},
                                status=400)
        return self.get_response(request)


class ClientAddressMiddleware:
    """Behind the run command's nginx (SERVED_BY_NGINX), the client's address is the one nginx saw (X-Real-IP, which
    nginx always sets): gunicorn then listens on a socket only nginx reaches, so the header cannot be forged."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.SERVED_BY_NGINX and "HTTP_X_REAL_IP" in request.META:
            request.META["REMOTE_ADDR"] = request.META["HTTP_X_REAL_IP"]
        return self.get_response(request)
