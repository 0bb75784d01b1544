import json

from django.core.management.base import BaseCommand, CommandError

from dcos_bundle.errors import RegistryError
from operations.importing import import_transfer


class Command(BaseCommand):
    help = ("Import a transfer set made by `manage.py export` from a directory or s3://bucket/prefix: every byte "
            "verified, every version through the ingest pipeline's checks, published only once all passed. Run it "
            "again after an interruption to complete it.")

    def add_arguments(self, parser):
        parser.add_argument("--from", required=True, dest="source", metavar="DIR|s3://bucket/prefix",
                            help="The transfer set.")
        parser.add_argument("--replace", action="store_true",
                            help="Replace versions published here with different content (otherwise they refuse "
                                 "the import).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, source, replace, as_json, **options):
        try:
            report = import_transfer(source, replace=replace)
        except RegistryError as error:
            raise CommandError(f"{error.message} ({error.code})") from None
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
            return
        if report.schema_created:
            self.stdout.write("Created the database schema.")
        self.stdout.write(f"Imported transfer {report.transfer} from {report.source}: {len(report.added)} added, "
                          f"{len(report.replaced)} replaced, {len(report.unchanged)} unchanged of {report.versions} "
                          f"versions; {report.blobs_carried} blobs ({report.bytes_carried} bytes) carried.")
        for word, labels in (("added", report.added), ("replaced", report.replaced)):
            for label in labels:
                self.stdout.write(f"  {word}: {label}")
