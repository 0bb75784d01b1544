import json

from django.core.management.base import BaseCommand, CommandError

from ingest.verify import verify_blobs


class Command(BaseCommand):
    help = "Re-hash stored blobs (all, or a random sample) and report the missing and corrupt ones."

    def add_arguments(self, parser):
        parser.add_argument("--sample", type=float, default=1.0, help="Fraction of blobs to check (default: all).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, sample, as_json, **options):
        if not 0 < sample <= 1:
            raise CommandError("--sample must be a fraction above 0 and at most 1.")
        report = verify_blobs(sample)
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
        else:
            self.stdout.write(f"Checked {report.checked} blobs ({report.bytes} bytes): "
                              f"{len(report.missing)} missing, {len(report.corrupt)} corrupt.")
            for digest in report.missing:
                self.stdout.write(f"missing {digest}")
            for damage in report.corrupt:
                self.stdout.write(f"corrupt {damage['digest']} (reads as {damage['actual']}, "
                                  f"{damage['actual_size']} of {damage['size']} bytes)")
        if not report.healthy:
            raise SystemExit(1)
