"""The installed version of this project: what `dcos-registry --version`, the run command's banner and a
bundle's manifest (``builtBy.version``) name."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "dcos-package-registry"


def installed_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"  # run from a source tree that was never installed
