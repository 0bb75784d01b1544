from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from access.audit import export_csv
from access.models import AuditEvent


class Command(BaseCommand):
    help = "Write the audit log as CSV (oldest first) to standard output or a file."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Only events at or after this ISO 8601 date and time.")
        parser.add_argument("--output", help="Write to this file instead of standard output.")

    def handle(self, *args, since, output, **options):
        events = AuditEvent.objects.order_by("created_at", "id")
        if since:
            moment = parse_datetime(since)
            if moment is None:
                raise CommandError(f"--since {since!r} is not an ISO 8601 date and time.")
            events = events.filter(created_at__gte=moment)
        if output:
            with open(output, "w", newline="") as sink:
                sink.writelines(export_csv(events.iterator()))
            return
        for line in export_csv(events.iterator()):
            self.stdout.write(line, ending="")
