import json
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from dcos_bundle.sizes import human_size
from operations.gc import GcReport, collect


def held_back(report: GcReport) -> str:
    """Why unused blobs survive the run: they were stored less than the protection window ago."""
    hours = report.protection.total_seconds() / 3600
    return (f"The protection window ({hours:g} h: GC_PROTECTION_SECONDS, or --protection-hours) holds back "
            f"{report.held_back_blobs} unused blobs ({human_size(report.held_back_bytes)}, {report.held_back_bytes} "
            f"bytes) stored less than {hours:g} h ago, such as those of a version removed soon after its upload; "
            f"a run after {report.held_back_until:%Y-%m-%d %H:%M:%S} UTC deletes them if nothing uses them by then.")


class Command(BaseCommand):
    help = ("Delete blobs no published version or running ingest uses, staging left by failed or abandoned "
            "uploads, and writes that never finished, all older than the protection window.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be deleted; delete nothing.")
        parser.add_argument("--protection-hours", type=float, default=settings.GC_PROTECTION_SECONDS / 3600,
                            help="Keep anything younger than this (default: GC_PROTECTION_SECONDS).")
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="Print the report as JSON: stdout carries nothing else (logs go to stderr).")

    def handle(self, *args, dry_run, protection_hours, as_json, **options):
        report = collect(timedelta(hours=protection_hours), dry_run=dry_run)
        if as_json:
            self.stdout.write(json.dumps(report.to_json()))
            return
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {len(report.blobs)} blobs ({report.blob_bytes} bytes), "
                          f"{len(report.staged_files)} staged files, {len(report.abandoned_uploads)} abandoned "
                          f"uploads, {report.abandoned_writes} abandoned writes.")
        if report.held_back_blobs:
            self.stdout.write(held_back(report))
        if report.blobs_kept_because:
            self.stdout.write(f"Kept every unused blob: {report.blobs_kept_because}.")
