"""The audit log: every change, with who made it, when and from where."""

from __future__ import annotations

import csv
import json
from typing import Iterable, Iterator

from .auth import Principal, user_principal
from .models import AuditEvent

EXPORT_FIELDS = ["created_at", "actor", "action", "target", "cluster", "remote_addr", "details"]


def record(principal: Principal, action: str, target: str = "", remote_addr: str | None = None,
           **details) -> AuditEvent:
    cluster = principal.cluster.name if principal.cluster is not None else ""
    return AuditEvent.objects.create(actor=principal.label, action=action, target=target, details=details,
                                     remote_addr=remote_addr or None, cluster=cluster)


def record_request(request, action: str, target: str = "", **details) -> AuditEvent:
    """Record what the caller of ``request`` did (DRF's request.user is its Principal)."""
    return record(request.user, action, target, request.META.get("REMOTE_ADDR"), **details)


def record_admin(request, action: str, target: str = "", **details) -> AuditEvent:
    """Record what a user did in the admin (where request.user is the Django user)."""
    return record(user_principal(request.user), action, target, request.META.get("REMOTE_ADDR"), **details)


class _Line:
    def write(self, value: str) -> str:
        return value


def export_csv(events: Iterable[AuditEvent]) -> Iterator[str]:
    """CSV lines (header first) for a streaming response or a file; details as JSON."""
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_FIELDS)
    for event in events:
        yield writer.writerow([event.created_at.isoformat(), event.actor, event.action, event.target, event.cluster,
                               event.remote_addr or "", json.dumps(event.details, sort_keys=True)])
