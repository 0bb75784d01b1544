"""Admin logins are rate limited per user name and per address, and every failure is in the audit log."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from access.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("operator", "operator@example.org", PASSWORD)


def log_in(username: str, password: str, address: str = "10.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return response, client


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_the_right_password_is_refused_after_too_many_wrong_ones(admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(5):
        response, _ = log_in("operator", "wrong")
    assert response.status_code == 429
    response, client = log_in("operator", PASSWORD)
    assert response.status_code == 429 and not logged_in(client)
    # The user is locked wherever the attempts come from.
    response, client = log_in("operator", PASSWORD, address="10.0.0.2")
    assert response.status_code == 429 and not logged_in(client)

    failed = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED)
    assert failed.count() >= 5 and {event.actor for event in failed} == {"user:operator"}
    assert set(failed.values_list("remote_addr", flat=True)) >= {"10.0.0.1"}
    lockouts = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_LOCKED_OUT)
    assert {(event.actor, event.remote_addr) for event in lockouts} == {("user:operator", "10.0.0.1"),
                                                                         ("user:operator", "10.0.0.2")}


def test_one_address_guessing_many_user_names_is_locked_out(admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for number in range(5):
        log_in(f"guess{number}", "wrong", address="10.0.0.9")
    response, client = log_in("operator", PASSWORD, address="10.0.0.9")
    assert response.status_code == 429 and not logged_in(client)
    # Another address is not held back by it.
    response, client = log_in("operator", PASSWORD, address="10.0.0.10")
    assert response.status_code == 302 and logged_in(client)


def test_a_lockout_ends_after_the_cool_off(admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    log_in("operator", "wrong")
    log_in("operator", "wrong")
    assert log_in("operator", PASSWORD)[0].status_code == 429
    time.sleep(2.5)
    response, client = log_in("operator", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_a_successful_login_after_a_few_mistakes_resets_the_count(admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        log_in("operator", "wrong")
    assert log_in("operator", PASSWORD)[0].status_code == 302
    for _ in range(2):
        log_in("operator", "wrong")
    response, client = log_in("operator", PASSWORD)
    assert response.status_code == 302 and logged_in(client)
