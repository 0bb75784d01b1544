import json

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError
from operations.verify import verify_blobs


class Command(BaseCommand):
    help = "Re-hash stored blobs (all, or a random sample) and report the missing and corrupt ones."

    def add_arguments(self, parser):
        parser.add_argument("--sample", type=float, default=1.0, help="Fraction of blobs to check (default: all).")
        parser.add_argument("--repair-from", metavar="BACKUP",
                            help="Copy missing and corrupt blobs back from this backup (a directory or s3://...).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, sample, repair_from, as_json, **options):
        if not 0 < sample <= 1:
            raise CommandError("--sample must be a fraction above 0 and at most 1.")
        try:
            report = verify_blobs(sample, repair_from=repair_from)
        except BackupError as error:
            raise CommandError(str(error)) from None
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
            for digest in report.repaired:
                self.stdout.write(f"repaired {digest} from the backup")
            for failure in report.unrepairable:
                self.stdout.write(f"unrepairable {failure['digest']}: {failure['reason']}")
        if not report.healthy:
            raise SystemExit(1)
