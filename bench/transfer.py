"""Transfer figures: a catalogue of versions sharing images exported and imported, then an incremental transfer.

A source registry gets ``--versions`` published versions (``--packages`` packages; real bundles, ingested
by the pipeline in-process). Each version has three one-layer images: a base image every version
shares, its package's image, and an image of its own, plus an asset of its own. Then:

1. ``manage.py export`` of everything, and ``manage.py import`` of it into a fresh registry (its own
   database and data directory), timed;
2. the destination's ``manage.py inventory``; two new versions (sharing the base and their package's
   image) are published on the source, exported ``--since`` the inventory and imported.

Printed side by side:

- bytes the second transfer carried, against the bytes of the blobs only the new versions use (the
  goal: equal, within 1 %), and against the first transfer;
- the first import's throughput (carried bytes / its time, in-process), against the floor of
  ``bench/ingest.py`` measured on the same bytes in the same run: every carried blob read once,
  sha256'd, layers inflated and sha256'd, written to disk (``floor_seconds`` over a stored ZIP of them).

    .venv/bin/python bench/transfer.py [--versions 100] [--packages 10] [--postgres postgres://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.ingest import floor_seconds  # noqa: E402  (on the path set above)
from bench.restore import Databases  # noqa: E402

MiB = 1024 * 1024

# Run by `manage.py shell` on the source: publishes versions NUMBERS through the ingest pipeline, in-process.
PUBLISH = """
import tempfile
from pathlib import Path
from access.audit import Actor
from ingest import services
from ingest.models import IngestJob
from registry_site.celery import app
from tests.bundles import AssetSpec, ImageSpec, make_bundle
app.conf.task_always_eager = True
for number in NUMBERS:
    package = number % PACKAGES
    with tempfile.TemporaryDirectory() as work:
        built = make_bundle(Path(work), name=f"bench-{package}", version=f"1.0.{number}",
                            assets=[AssetSpec("payload", f"payload-{number}.bin", 64 * 1024, number)],
                            images=[ImageSpec("base", "bench/base:1", [BASE], 1),
                                    ImageSpec("package", f"bench/package-{package}:1", [PACKAGE_LAYER], 1000 + package),
                                    ImageSpec("own", f"bench/own-{number}:1", [OWN], 100000 + number)])
        with open(built.path, "rb") as stream:
            job = services.receive_bundle(stream, actor=Actor("user:bench"), declared_size=built.path.stat().st_size,
                                          bundle_name=built.path.name, replace=False)
    job = IngestJob.objects.get(pk=job.pk)
    assert job.state == "succeeded", (job.error_code, job.error_message)
"""

# Run by `manage.py shell` on the destination: the import, timed in-process (the command's start is not counted).
IMPORT = """
import json, time
from operations.importing import import_transfer
started = time.perf_counter()
report = import_transfer(SOURCE)
print(json.dumps({**report.to_json(), "seconds": time.perf_counter() - started}))
"""

# Run by `manage.py shell` on the source: the bytes of the blobs only the named versions use.
NEW_BLOB_BYTES = """
from packages_app.models import VersionBlob
new = VersionBlob.objects.filter(version__version__in=VERSIONS)
old = set(VersionBlob.objects.exclude(version__version__in=VERSIONS).values_list("blob_id", flat=True))
print(sum(dict(new.exclude(blob_id__in=old).values_list("blob_id", "blob__size")).values()))
"""


def manage(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, check=True,
                          capture_output=True, text=True).stdout


def registry_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "STORAGE_URL", "CELERY_BROKER_URL", "REGISTRY_DATA_DIR")}
    env.update(REGISTRY_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="registry_site.settings",
               DISK_FREE_THRESHOLD_BYTES="1", UPLOADS_PER_MINUTE="0")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def publish(numbers: list[int], args, env: dict[str, str]) -> None:
    script = (PUBLISH.replace("NUMBERS", repr(numbers)).replace("PACKAGES", str(args.packages))
              .replace("BASE", str(args.base_mib * MiB)).replace("PACKAGE_LAYER", str(args.package_mib * MiB))
              .replace("OWN", str(args.own_mib * MiB)))
    manage("shell", "--no-imports", "-v0", "-c", script, env=env)


def timed_import(source: Path, env: dict[str, str]) -> dict:
    return json.loads(manage("shell", "--no-imports", "-v0", "-c", IMPORT.replace("SOURCE", repr(str(source))),
                             env=env))


def carried_zip(transfer: Path, manifest: dict, path: Path) -> Path:
    """The carried blobs as members of a stored ZIP, layers where bench/ingest.py's floor inflates them."""
    layers = {blob["digest"] for version in manifest["versions"] for blob in version["blobs"]
              if blob["role"] == "layer"}
    volumes = [transfer / volume["name"] for volume in manifest["volumes"]]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive, open(volumes[0], "rb") as stream:
        assert len(volumes) == 1
        for blob in manifest["blobs"]:
            stream.seek(blob["offset"])
            folder = "images/blobs/sha256/" if blob["digest"] in layers else "assets/sha256/"
            with archive.open(folder + blob["digest"][7:], "w", force_zip64=True) as member:
                left = blob["size"]
                while left:
                    chunk = stream.read(min(MiB, left))
                    member.write(chunk)
                    left -= len(chunk)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--packages", type=int, default=10)
    parser.add_argument("--base-mib", type=int, default=6, help="The layer every version shares.")
    parser.add_argument("--package-mib", type=int, default=3, help="The layer of each package's image.")
    parser.add_argument("--own-mib", type=int, default=2, help="The layer only one version uses.")
    parser.add_argument("--postgres", help="A PostgreSQL server URL to create the databases on (default: SQLite).")
    args = parser.parse_args()

    databases = Databases(args.postgres)
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as temporary:
        work = Path(temporary)
        try:
            source = registry_env(work / "source", databases.new())
            destination = registry_env(work / "destination", databases.new())
            for env in (source, destination):
                manage("migrate", "--no-input", "-v0", env=env)
            started = time.perf_counter()
            publish(list(range(args.versions)), args, source)
            seeding = time.perf_counter() - started

            first = json.loads(manage("export", "--to", str(work / "first"), "--json", env=source))
            imported = timed_import(work / "first", destination)
            import_seconds = imported["seconds"]
            assert len(imported["added"]) == args.versions, imported

            manifest = json.loads((work / "first" / "transfer.json").read_bytes())
            bundle = carried_zip(work / "first", manifest, work / "carried.zip")
            floor = floor_seconds(bundle, work / "floor-scratch")

            manage("inventory", "--to", str(work / "inventory.json"), env=destination)
            new_numbers = [args.versions, args.versions + 1]
            publish(new_numbers, args, source)
            new_bytes = int(manage("shell", "--no-imports", "-v0", "-c", NEW_BLOB_BYTES.replace(
                "VERSIONS", repr([f"1.0.{number}" for number in new_numbers])), env=source))
            second = json.loads(manage("export", "--to", str(work / "second"), "--since",
                                       str(work / "inventory.json"), "--json", env=source))
            again = timed_import(work / "second", destination)
            second_import_seconds = again["seconds"]
            assert len(again["added"]) == 2 and len(again["unchanged"]) == args.versions, again
        finally:
            databases.drop_all()

    print(f"Transfer of {args.versions} versions of {args.packages} packages on "
          f"{'PostgreSQL' if args.postgres else 'SQLite'} (published in {seeding:.0f} s):")
    print(f"  first transfer:  {first['blobs_carried']:5d} blobs, {first['bytes_carried'] / MiB:9.2f} MiB carried "
          f"for {first['blob_bytes'] / MiB:.2f} MiB of distinct blobs the versions use")
    print(f"  second transfer: {second['blobs_carried']:5d} blobs, {second['bytes_carried'] / MiB:9.2f} MiB carried; "
          f"the new versions' own blobs: {new_bytes / MiB:.2f} MiB "
          f"(carried / new = {second['bytes_carried'] / new_bytes:.4f}; "
          f"carried / first = {second['bytes_carried'] / first['bytes_carried']:.4f})")
    throughput = first["bytes_carried"] / MiB / import_seconds
    floor_throughput = first["bytes_carried"] / MiB / floor
    print(f"  import of the first transfer: {import_seconds:6.1f} s, {throughput:6.1f} MiB/s "
          f"({args.versions} versions, each its own ingest job)")
    print(f"  floor (read + sha256 + inflate + write, bench/ingest.py): {floor:6.1f} s, {floor_throughput:6.1f} MiB/s; "
          f"import / floor = {import_seconds / floor:.2f}x")
    print(f"  import of the second transfer: {second_import_seconds:6.1f} s "
          f"({len(again['added'])} added, {len(again['unchanged'])} unchanged)")


if __name__ == "__main__":
    main()
