import argparse

from django.core.management.base import BaseCommand

from dcos_bundle import cli


class Command(BaseCommand):
    help = "Turn a Universe package revision directory into a build definition (dcos-registry migrate)."

    def add_arguments(self, parser):
        cli.add_migrate_arguments(parser)

    def handle(self, *args, **options):
        if status := cli.execute(cli.run_migrate, cli.show_migrate, argparse.Namespace(**options), self.stdout, self.stderr):
            raise SystemExit(status)
