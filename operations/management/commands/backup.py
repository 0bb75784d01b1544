import json

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError, backup


class Command(BaseCommand):
    help = ("Back up the registry (the catalogue, clusters, tokens, users and groups, and the audit log, read in one "
            "consistent snapshot) and every blob the catalogue uses into a directory or s3://bucket/prefix, while "
            "the registry keeps running.")

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, dest="target", metavar="DIR|s3://bucket/prefix",
                            help="Where the backup goes.")
        parser.add_argument("--incremental", action="store_true",
                            help="Add a snapshot to a target that holds a backup, copying only the blobs it lacks.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, target, incremental, as_json, **options):
        try:
            report = backup(target, incremental=incremental)
        except BackupError as error:
            raise CommandError(str(error)) from None
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
        else:
            self.stdout.write(f"Backed up snapshot {report.snapshot} to {report.target}: {report.packages} packages, "
                              f"{report.versions} versions, {report.blobs} blobs ({report.blob_bytes} bytes), "
                              f"{report.clusters} clusters, {report.tokens} tokens, {report.users} users, "
                              f"{report.groups} groups, {report.audit_events} audit events; copied "
                              f"{report.blobs_copied} blobs ({report.bytes_copied} bytes).")
