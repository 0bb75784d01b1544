import json

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError
from operations.restore import restore


class Command(BaseCommand):
    help = ("Restore a backup into an empty registry: every blob is copied into the configured storage and "
            "verified, then the catalogue is written in one transaction.")

    def add_arguments(self, parser):
        parser.add_argument("--from", required=True, dest="source", metavar="DIR|s3://bucket/prefix",
                            help="The backup to restore.")
        parser.add_argument("--snapshot", help="The snapshot to restore (default: the newest).")
        parser.add_argument("--force", action="store_true",
                            help="Restore into a registry that is not empty, replacing its catalogue.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, source, snapshot, force, as_json, **options):
        try:
            report = restore(source, snapshot=snapshot, force=force)
        except BackupError as error:
            raise CommandError(str(error)) from None
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
        else:
            self.stdout.write(f"Restored snapshot {report.snapshot} from {report.source}: {report.packages} "
                              f"packages, {report.versions} versions, {report.blobs} blobs ({report.blob_bytes} "
                              f"bytes); copied {report.blobs_copied} blobs ({report.bytes_copied} bytes)"
                              + (", replacing the catalogue." if report.replaced else "."))
