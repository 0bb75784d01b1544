"""Insert published versions straight into a registry's database, for bench/serve.py to measure reads of them.

Run with the registry's environment (REGISTRY_DATA_DIR, or DATABASE_URL), once it has been migrated:

    .venv/bin/python bench/load_versions.py 10000
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
django.setup()

from packages_app.models import Package, PackageVersion  # noqa: E402  (needs the app registry set up above)

WORDS = ["stream", "store", "web", "queue", "graph", "search", "cache", "metrics", "log", "proxy"]
VERSIONS_PER_PACKAGE = 50


def load_versions(count: int) -> None:
    packages = Package.objects.bulk_create([
        Package(name=f"bench-{WORDS[n % len(WORDS)]}-{n}", last_release_version=VERSIONS_PER_PACKAGE - 1)
        for n in range(count // VERSIONS_PER_PACKAGE)
    ])
    PackageVersion.objects.bulk_create([
        PackageVersion(
            package=package, version=f"1.{minor}.0", packaging_version="4.0", release_version=minor,
            description=f"A {WORDS[index % len(WORDS)]} service, release {minor}.", tags=[WORDS[index % len(WORDS)]],
            metadata={"name": package.name, "version": f"1.{minor}.0", "packagingVersion": "4.0"},
            bundle_digest="sha256:" + "0" * 64, content_digest="sha256:" + "0" * 64,
        )
        for index, package in enumerate(packages) for minor in range(VERSIONS_PER_PACKAGE)
    ], batch_size=1000)


if __name__ == "__main__":
    load_versions(int(sys.argv[1]))
