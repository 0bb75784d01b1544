"""/metrics names every cluster and route: METRICS_ACCESS decides who reads it (access/exposure.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from access.tokens import create_token
from registry_site.metrics import exposition
from tests.actors import TEST_ACTOR
from tests.factories import ClusterFactory
from tests.registry_site.test_metrics import parse, sample

pytestmark = pytest.mark.django_db
OUTSIDE = "203.0.113.7"  # a documentation address: no private network


def scrape(client: Client | None = None, **extra):
    return (client or Client()).get("/metrics", **extra)


def refused(response, status: int, code: str) -> bool:
    return response.status_code == status and response.json()["code"] == code and response.json()["message"]


def test_by_default_only_the_private_networks_read_it(settings):
    assert settings.METRICS_ACCESS == "network"
    for address in ["127.0.0.1", "10.4.0.12", "172.17.0.1", "192.168.1.20", "9.0.3.4", "::1", "fd01:b::7",
                    "::ffff:10.4.0.12"]:
        response = scrape(REMOTE_ADDR=address)
        assert response.status_code == 200, address
        assert response["Content-Type"].startswith("text/plain; version=")
    for address in [OUTSIDE, "8.8.8.8", "2001:db8::1", "::ffff:203.0.113.7"]:
        assert refused(scrape(REMOTE_ADDR=address), 403, "permission_denied"), address


def test_a_proxy_cannot_carry_an_outside_client_in(settings):
    # marathon-lb or an nginx in the network relays an outside client: it adds the client's address.
    assert refused(scrape(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=OUTSIDE), 403, "permission_denied")
    assert refused(scrape(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=f"10.9.9.9, {OUTSIDE}"), 403,
                   "permission_denied")
    # A client forging the header only adds addresses: it never gets in from outside, nor with nonsense.
    assert refused(scrape(REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="10.0.0.1"), 403, "permission_denied")
    assert refused(scrape(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="unknown"), 403, "permission_denied")
    assert scrape(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="192.168.3.3, 10.0.0.4").status_code == 200


def test_the_allowed_networks_are_a_setting(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24", "2001:db8::1"]
    assert scrape(REMOTE_ADDR=OUTSIDE).status_code == 200
    assert scrape(REMOTE_ADDR="2001:db8::1").status_code == 200
    assert refused(scrape(REMOTE_ADDR="127.0.0.1"), 403, "permission_denied")


def test_with_token_access_it_needs_a_token_without_a_cluster(settings):
    settings.METRICS_ACCESS = "token"
    anonymous = scrape(REMOTE_ADDR="127.0.0.1")
    assert refused(anonymous, 401, "not_authenticated") and anonymous["WWW-Authenticate"].startswith("Bearer")
    malformed = scrape(Client(headers={"Authorization": "Bearer dcr_nothing"}))
    assert refused(malformed, 401, "invalid_token")
    edge = ClusterFactory(name="edge")
    bound = Client(headers={"Authorization": f"Bearer {create_token('edge', 'admin', edge, actor=TEST_ACTOR)[1]}"})
    assert refused(scrape(bound), 403, "permission_denied")
    # Any token without a cluster, from anywhere, and a logged-in user.
    reader = Client(headers={"Authorization": f"Bearer {create_token('prometheus', 'read', actor=TEST_ACTOR)[1]}"})
    assert scrape(reader, REMOTE_ADDR=OUTSIDE).status_code == 200
    user = Client()
    user.force_login(get_user_model().objects.create_user("operator", password="unused"))
    assert scrape(user).status_code == 200


def test_open_access_serves_anyone(settings):
    settings.METRICS_ACCESS = "open"
    assert scrape(REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR=OUTSIDE).status_code == 200


def test_refusals_are_counted_unlike_scrapes(settings):
    def counts() -> tuple[float, float]:
        samples = parse(exposition().decode())
        return tuple(sample(samples, "registry_http_requests_total", method="GET", route="metrics", status=status,
                            cluster="") for status in ("403", "200"))

    refusals, scrapes = counts()
    scrape(REMOTE_ADDR=OUTSIDE)
    scrape(REMOTE_ADDR="127.0.0.1")
    assert counts() == (refusals + 1, scrapes) and scrapes == 0
