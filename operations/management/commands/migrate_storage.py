import json

from django.core.management.base import BaseCommand, CommandError

from operations.storage_migration import MigrationReport, StorageMigrationError, migrate_storage


class Command(BaseCommand):
    help = ("Copy every blob to another storage backend while the registry keeps serving, then switch the registry "
            "to it. Interrupted runs resume; the old backend is only read.")

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, dest="url", metavar="STORAGE_URL",
                            help="The new backend: file:///path or s3://bucket/prefix (S3_* settings apply).")
        parser.add_argument("--wait-seconds", type=float, default=300,
                            help="How long the final phase waits for running ingest jobs (default: 300).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the summary as JSON.")

    def handle(self, *args, url, wait_seconds, as_json, **options):
        if wait_seconds < 0:
            raise CommandError("--wait-seconds must be zero or more.")
        try:
            report = migrate_storage(url, wait_seconds=wait_seconds,
                                     progress=None if as_json else self._progress(options["verbosity"]))
        except StorageMigrationError as error:
            raise CommandError(str(error)) from error
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
            return
        self.stdout.write(f"Switched the registry to {report.target}: {_counts(report)}. Restart every web and "
                          f"worker process with STORAGE_URL={url}; {report.source} was left as it was.")

    def _progress(self, verbosity: int):
        def show(event: str, report: MigrationReport) -> None:
            if event == "pass":
                self.stdout.write(f"Pass {report.passes}: {_counts(report)}.")
            elif event == "hold":
                self.stdout.write("Final phase: new uploads are refused until the switch; waiting for running "
                                  "ingest jobs.")
            elif verbosity > 1 and event in ("copied", "skipped"):
                self.stdout.write(f"{report.copied} copied, {report.skipped} already there")
        return show


def _counts(report: MigrationReport) -> str:
    return (f"{report.copied} blobs copied ({report.copied_bytes} bytes), {report.skipped} already in the target "
            f"({report.skipped_bytes} bytes), {report.vanished} vanished, in {report.passes} passes")
