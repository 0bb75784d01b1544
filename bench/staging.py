"""Staging in S3 against staging on local disk, side by side on the same bundle.

What an upload and its ingest do with the staged bundle: write it once as it arrives (hashed on the
way), read it once whole (the receive stage of a resumable upload hashes it), and read every member
through zipfile (what inspect, verify and store do). Timed for a file under a local directory
(today's STAGING_DIR, the baseline) and for an object staged in S3 (a multipart upload written as
the bytes arrive, read back by range), with the peak Python heap of each.

    .venv/bin/python bench/staging.py --size-mib 256 --s3-endpoint http://127.0.0.1:8333 \
        --s3-access-key-id KEY --s3-secret-access-key SECRET

The bundle is built before timing starts, so making it is not measured.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import uuid
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.blobstore import measure  # noqa: E402
from blobs.drivers import open_store  # noqa: E402
from dcos_bundle.digests import CHUNK_SIZE  # noqa: E402
from dcos_bundle.reader import BundleReader  # noqa: E402
from tests.bundles import ImageSpec, make_bundle  # noqa: E402

MiB = 1024 * 1024
LAYER_MIB = 32


def write(source: Path, target) -> None:
    """Copy the bundle in 1 MiB chunks, as an upload arrives, hashing it on the way."""
    hasher = hashlib.sha256()
    with open(source, "rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            hasher.update(chunk)
            target.write(chunk)
    target.commit()


class FileTarget:
    def __init__(self, path: Path):
        self.file = open(path, "wb")

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


def hash_whole(opener) -> None:
    hasher = hashlib.sha256()
    with opener() as stream:
        while chunk := stream.read(CHUNK_SIZE):
            hasher.update(chunk)


def read_members(opener) -> None:
    """Every asset and image blob read through zipfile and checked against its digest, as ingest reads them."""
    with opener() as bundle, BundleReader(bundle) as reader:
        reader.verify()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--s3-endpoint", required=True)
    parser.add_argument("--s3-access-key-id")
    parser.add_argument("--s3-secret-access-key")
    parser.add_argument("--s3-bucket", default=f"bench-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()

    client = boto3.client("s3", endpoint_url=args.s3_endpoint, aws_access_key_id=args.s3_access_key_id,
                          aws_secret_access_key=args.s3_secret_access_key, region_name="us-east-1")
    client.create_bucket(Bucket=args.s3_bucket)
    store = open_store(f"s3://{args.s3_bucket}/bench", endpoint_url=args.s3_endpoint,
                       access_key_id=args.s3_access_key_id, secret_access_key=args.s3_secret_access_key)
    layers = [LAYER_MIB * MiB] * max(1, args.size_mib // LAYER_MIB)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="staging-bench-") as workdir:
            work = Path(workdir)
            built = make_bundle(work / "bundle", images=[ImageSpec("server", "example/bench:1.0.0", layers)])
            size = built.path.stat().st_size
            local = work / "staged.dcos"
            places = {
                "local file": (lambda: FileTarget(local), lambda: open(local, "rb")),
                "S3 object": (lambda: store.staged_writer("bundles/bench.dcos"),
                              lambda: store.open_staged("bundles/bench.dcos")),
            }
            for place, (target, opener) in places.items():
                seconds, peak = measure(lambda target=target: write(built.path, target()))
                rows.append((f"{place}: stage (write+sha256)", seconds, peak))
                seconds, peak = measure(lambda opener=opener: hash_whole(opener))
                rows.append((f"{place}: read whole + sha256", seconds, peak))
                seconds, peak = measure(lambda opener=opener: read_members(opener))
                rows.append((f"{place}: zipfile, every member", seconds, peak))
    finally:
        store.delete_staged("bundles/bench.dcos")
        client.delete_bucket(Bucket=args.s3_bucket)

    print(f"bundle of {size / MiB:.0f} MiB ({len(layers)} layers); baseline: the local file")
    print(f"{'operation':36} {'seconds':>8} {'MB/s':>8} {'peak heap MiB':>14}")
    for name, seconds, peak in rows:
        print(f"{name:36} {seconds:8.2f} {size / MiB / seconds:8.1f} {peak / MiB:14.1f}")


if __name__ == "__main__":
    main()
