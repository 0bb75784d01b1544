"""Blob store throughput and memory, side by side with the single-pass floor on the same bytes.

The floor is what any store must at least do: read the source once, sha256 it, write it to a
file on the same disk. Each driver's put and read-back are timed against it, and the peak
Python heap (tracemalloc) of each operation is printed.

    .venv/bin/python bench/blobstore.py --size-mib 512
    .venv/bin/python bench/blobstore.py --size-mib 512 --s3-endpoint http://127.0.0.1:8333 \
        --s3-access-key-id KEY --s3-secret-access-key SECRET

The source is a file on disk written before timing starts, so generating bytes is not measured.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blobs.drivers import open_store  # noqa: E402
from dcos_bundle.digests import CHUNK_SIZE  # noqa: E402

MiB = 1024 * 1024


def make_source(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "wb") as file:
        for offset in range(0, size, MiB):
            chunk = os.urandom(min(MiB, size - offset))
            hasher.update(chunk)
            file.write(chunk)
    return f"sha256:{hasher.hexdigest()}"


def measure(operation, cleanup=lambda: None, repeat: int = 3) -> tuple[float, int]:
    """Best time and highest heap peak over ``repeat`` runs (the first run warms the caches)."""
    best, highest = float("inf"), 0
    for _ in range(repeat):
        tracemalloc.start()
        started = time.perf_counter()
        operation()
        best = min(best, time.perf_counter() - started)
        highest = max(highest, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        cleanup()
    return best, highest


def floor_copy(source: Path, target: Path) -> None:
    hasher = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(CHUNK_SIZE):
            hasher.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())


def read_back(store, digest: str) -> None:
    hasher = hashlib.sha256()
    with store.open(digest) as stream:
        while chunk := stream.read(CHUNK_SIZE):
            hasher.update(chunk)
    assert f"sha256:{hasher.hexdigest()}" == digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--s3-endpoint")
    parser.add_argument("--s3-access-key-id")
    parser.add_argument("--s3-secret-access-key")
    parser.add_argument("--s3-bucket", default=f"bench-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    size = args.size_mib * MiB

    with tempfile.TemporaryDirectory(prefix="blobstore-bench-") as workdir:
        work = Path(workdir)
        source = work / "source"
        digest = make_source(source, size)
        rows = []
        seconds, peak = measure(
            lambda: floor_copy(source, work / "floor-copy"), cleanup=(work / "floor-copy").unlink
        )
        rows.append(("floor: read+sha256+write", seconds, peak, seconds))
        floor = seconds

        stores = {"local": open_store((work / "local").as_uri())}
        if args.s3_endpoint:
            boto3.client(
                "s3", endpoint_url=args.s3_endpoint, aws_access_key_id=args.s3_access_key_id,
                aws_secret_access_key=args.s3_secret_access_key, region_name="us-east-1",
            ).create_bucket(Bucket=args.s3_bucket)
            stores["s3"] = open_store(
                f"s3://{args.s3_bucket}/bench", endpoint_url=args.s3_endpoint,
                access_key_id=args.s3_access_key_id, secret_access_key=args.s3_secret_access_key,
            )
        for name, store in stores.items():
            def put(store=store):
                with open(source, "rb") as stream:
                    store.put(stream, expected_digest=digest, expected_size=size)

            seconds, peak = measure(put, cleanup=lambda store=store: store.delete(digest))
            rows.append((f"{name}: put (verified)", seconds, peak, floor))
            put()
            seconds, peak = measure(lambda store=store: read_back(store, digest))
            rows.append((f"{name}: read back + sha256", seconds, peak, floor))
            store.delete(digest)

    print(f"blob of {args.size_mib} MiB")
    print(f"{'operation':32} {'seconds':>8} {'MB/s':>8} {'peak heap MiB':>14} {'x floor':>8}")
    for name, seconds, peak, baseline in rows:
        print(f"{name:32} {seconds:8.2f} {size / MiB / seconds:8.1f} {peak / MiB:14.1f} {seconds / baseline:8.2f}")


if __name__ == "__main__":
    main()
