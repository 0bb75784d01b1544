import json

from django.core.management.base import BaseCommand

from operations.transfer import write_inventory


class Command(BaseCommand):
    help = ("Write what this registry holds (every blob its versions use, and the versions) to a file, for "
            "`manage.py export --since FILE` on the other side of an air gap to carry only what is missing.")

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, dest="path", metavar="FILE", help="The inventory file to write.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, path, as_json, **options):
        written = write_inventory(path)
        if as_json:
            self.stdout.write(json.dumps(written))
        else:
            self.stdout.write(f"Wrote the inventory of {written['versions']} versions and {written['blobs']} blobs "
                              f"to {written['path']}.")
