#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

from django.core.management import execute_from_command_line

from registry_site.data_dir import prepare


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
    # Before Django reads the settings: they read the data directory's key, never write it.
    prepare()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
