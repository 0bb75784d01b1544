"""Rate limiting of uploads per caller (token or user)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from .models import AuditEvent

WINDOW = timedelta(minutes=1)


class UploadRateThrottle(BaseThrottle):
    """At most UPLOADS_PER_MINUTE new uploads per caller in any minute.

    Counted from the audit log, which every web process shares, so the limit holds however many
    processes serve the API.
    """

    def allow_request(self, request, view) -> bool:
        limit = settings.UPLOADS_PER_MINUTE
        if not limit:
            return True
        now = timezone.now()
        recent = list(AuditEvent.objects.filter(
            action=AuditEvent.Action.UPLOAD, actor=request.user.label, created_at__gt=now - WINDOW,
        ).order_by("-created_at").values_list("created_at", flat=True)[:limit])
        if len(recent) < limit:
            return True
        self._wait = max((recent[-1] + WINDOW - now).total_seconds(), 1.0)
        return False

    def wait(self) -> float:
        return self._wait
