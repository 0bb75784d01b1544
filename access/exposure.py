"""Who may read /metrics (METRICS_ACCESS): its series name every cluster, route and error code.

- ``network``: a request whose address, and every address a proxy forwarded it for
  (``X-Forwarded-For``), lies in METRICS_ALLOWED_NETWORKS. A proxy in the network that forwards
  an outside client (Admin Router, marathon-lb) adds that client's address, so the client is
  refused; a forged header only adds addresses, so it can refuse but never admit.
- ``token``: a token without a cluster (any scope), or a logged-in user.
- ``open``: anyone.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

from dcos_bundle.errors import ErrorCode, RegistryError

from .auth import principal_of


def check_metrics_reader(request) -> None:
    """Raise the RegistryError that refuses ``request`` /metrics, if METRICS_ACCESS does."""
    if settings.METRICS_ACCESS == "network":
        _check_network(request)
    elif settings.METRICS_ACCESS == "token":
        _check_token(request)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d.
    return getattr(address, "ipv4_mapped", None) or address


def _check_network(request) -> None:
    networks = [ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS]
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for text in [request.META.get("REMOTE_ADDR", ""), *forwarded]:
        address = _address(text)
        if address is None or not any(address in network for network in networks):
            raise RegistryError(
                ErrorCode.PERMISSION_DENIED, "/metrics is served only to METRICS_ALLOWED_NETWORKS; this request "
                "comes (or was forwarded) from outside them.", address=text.strip(),
            )


def _check_token(request) -> None:
    principal = principal_of(request)
    if not principal.is_authenticated:
        raise RegistryError(ErrorCode.NOT_AUTHENTICATED,
                            "/metrics needs a token: send 'Authorization: Bearer <token>'.")
    if principal.cluster is not None:
        raise RegistryError(ErrorCode.PERMISSION_DENIED, "/metrics spans every cluster: it needs a token without a "
                            f"cluster; {principal.label} is bound to one.")
