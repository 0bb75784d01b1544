import json

from django.core.management.base import BaseCommand, CommandError

from dcos_bundle.errors import RegistryError
from dcos_bundle.sizes import parse_size
from operations.backup import BackupError
from operations.export import export, selection


class Command(BaseCommand):
    help = ("Export a selection of the catalogue as a transfer set (a manifest, the blob stream in volumes, and "
            "SHA256SUMS) into a directory or s3://bucket/prefix, for `manage.py import` on the other side of an "
            "air gap. With --since, only the blobs the destination lacks travel.")

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, dest="target", metavar="DIR|s3://bucket/prefix",
                            help="Where the transfer set goes (empty, or absent).")
        parser.add_argument("--cluster", help="Export what this cluster sees (its rules and DC/OS version).")
        parser.add_argument("--package", action="append", default=[], dest="packages", metavar="NAME[=PATTERNS]",
                            help="Export this package, or only its versions matching the comma-separated patterns "
                                 "(as cluster rules: 2.3.0, 2.4.*); repeat for more packages.")
        parser.add_argument("--dcos-version", help="Leave out versions that need a newer DC/OS.")
        parser.add_argument("--since", metavar="INVENTORY|transfer.json",
                            help="The destination's inventory (manage.py inventory there), or the manifest of the "
                                 "last transfer it imported: blobs it names are left out.")
        parser.add_argument("--volume-size", metavar="SIZE",
                            help="Cut the blob stream into volumes of this size (bytes, or e.g. 4G, 700M).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, target, cluster, packages, dcos_version, since, volume_size, as_json, **options):
        try:
            report = export(target, chosen=selection(cluster=cluster, packages=packages, dcos_version=dcos_version),
                            since=since, volume_size=parse_size(volume_size) if volume_size else None)
        except (RegistryError, BackupError, ValueError) as error:
            raise CommandError(str(error)) from None
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
        else:
            self.stdout.write(f"Exported transfer {report.transfer} to {report.target}: {report.versions} versions "
                              f"using {report.blobs} blobs ({report.blob_bytes} bytes); carried {report.blobs_carried} "
                              f"blobs ({report.bytes_carried} bytes) in {len(report.volumes)} volumes, left out "
                              f"{report.blobs_left_out} the destination holds.")
