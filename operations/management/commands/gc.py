import json
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from operations.gc import collect


class Command(BaseCommand):
    help = ("Delete blobs no published version or running ingest uses, staging left by failed or abandoned "
            "uploads, and writes that never finished, all older than the protection window.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be deleted; delete nothing.")
        parser.add_argument("--protection-hours", type=float, default=settings.GC_PROTECTION_SECONDS / 3600,
                            help="Keep anything younger than this (default: GC_PROTECTION_SECONDS).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, dry_run, protection_hours, as_json, **options):
        report = collect(timedelta(hours=protection_hours), dry_run=dry_run)
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
            return
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {len(report.blobs)} blobs ({report.blob_bytes} bytes), "
                          f"{len(report.staged_files)} staged files, {len(report.abandoned_uploads)} abandoned "
                          f"uploads, {report.abandoned_writes} abandoned writes.")
        if report.blobs_kept_because:
            self.stdout.write(f"Kept every unused blob: {report.blobs_kept_because}.")
