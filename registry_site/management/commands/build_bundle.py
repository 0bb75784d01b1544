import argparse

from django.core.management.base import BaseCommand

from dcos_bundle import cli


class Command(BaseCommand):
    help = "Build a .dcos bundle from a build definition (dcos-registry build)."

    def add_arguments(self, parser):
        cli.add_build_arguments(parser)

    def handle(self, *args, **options):
        if status := cli.execute(cli.run_build, cli.show_build, argparse.Namespace(**options), self.stdout, self.stderr):
            raise SystemExit(status)
