"""Admin logins in the audit log: every failed attempt, and every lockout django-axes imposes."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed

from .audit import record
from .auth import Principal
from .models import AuditEvent


def _attempted_user(credentials: dict | None) -> Principal:
    return Principal("user", (credentials or {}).get("username", ""))


def record_failed_login(sender, credentials=None, request=None, **_):
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    record(_attempted_user(credentials).actor(address), AuditEvent.Action.LOGIN_FAILED, "admin login")


def record_lockout(sender, request=None, username=None, ip_address=None, **_):
    record(Principal("user", username or "").actor(ip_address), AuditEvent.Action.LOGIN_LOCKED_OUT, "admin login")


def connect() -> None:
    user_login_failed.connect(record_failed_login, dispatch_uid="audit-login-failed")
    user_locked_out.connect(record_lockout, dispatch_uid="audit-login-locked-out")
