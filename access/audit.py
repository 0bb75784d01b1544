"""The audit log: every change, with who made it, when and from where.

The services that change things (tokens, clusters, version removal, uploads, job cancel and
retry) write the record themselves, from the ``Actor`` their caller hands them; views, the admin
and commands only say who acts. So an entry point added later cannot skip the log.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Iterable, Iterator

from .models import AuditEvent, Cluster

EXPORT_FIELDS = ["created_at", "actor", "action", "target", "cluster", "remote_addr", "details"]


@dataclass(frozen=True)
class Actor:
    """Who makes a change: its label as the log records it (``token:<name> (<key id>)``, ``user:<name>``...),
    the cluster a cluster's token acts for (none: an unrestricted caller), and the request's address (none
    for a command). Jobs and upload sessions it creates carry its label and cluster."""

    label: str
    cluster: Cluster | None = None
    remote_addr: str | None = None


def record(actor: Actor, action: AuditEvent.Action, target: str = "", **details) -> AuditEvent:
    return AuditEvent.objects.create(actor=actor.label, action=action, target=target, details=details,
                                     remote_addr=actor.remote_addr or None,
                                     cluster=actor.cluster.name if actor.cluster is not None else "")


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
