import json

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError
from operations.restore import restore


class Command(BaseCommand):
    help = ("Restore a backup into an empty registry (creating the database schema if the database is empty): "
            "every blob is copied into the configured storage and verified, then the catalogue, clusters, tokens, "
            "users and groups, and the audit log are written in one transaction.")

    def add_arguments(self, parser):
        parser.add_argument("--from", required=True, dest="source", metavar="DIR|s3://bucket/prefix",
                            help="The backup to restore.")
        parser.add_argument("--snapshot", help="The snapshot to restore (default: the newest).")
        parser.add_argument("--force", action="store_true",
                            help="Restore into a registry that is not empty, replacing its contents (its audit log "
                                 "keeps its events).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, source, snapshot, force, as_json, **options):
        try:
            report = restore(source, snapshot=snapshot, force=force)
        except BackupError as error:
            raise CommandError(str(error)) from None
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
            return
        if report.schema_created:
            self.stdout.write("Created the database schema.")
        self.stdout.write(f"Restored snapshot {report.snapshot} from {report.source}: {report.packages} packages, "
                          f"{report.versions} versions, {report.blobs} blobs ({report.blob_bytes} bytes), "
                          f"{report.clusters} clusters, {report.tokens} tokens, {report.users} users, "
                          f"{report.groups} groups, {report.audit_events} audit events; copied {report.blobs_copied} "
                          f"blobs ({report.bytes_copied} bytes)"
                          + (", replacing the registry's contents." if report.replaced else "."))
        if report.lacked:
            self.stderr.write(f"The backup does not hold {', '.join(report.lacked)} (it was made by an older "
                              "registry): create them again (manage.py createsuperuser, manage.py tokens create, "
                              "the clusters API).")
        if report.permissions_skipped:
            self.stderr.write("Left out permissions this registry does not define: "
                              f"{', '.join(report.permissions_skipped)}.")
