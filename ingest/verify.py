"""Re-hashing stored blobs: finding the ones the storage lost or damaged."""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field

from ingest.blobstore import BlobNotFound
from ingest.blobstore.base import CHUNK_SIZE, digest_of
from ingest.models import Blob, OperationRun
from ingest.operation_runs import recorded_run
from ingest.storage import blob_store

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    checked: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[dict] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.corrupt

    def to_json(self) -> dict:
        return {"checked": self.checked, "bytes": self.bytes, "missing": self.missing, "corrupt": self.corrupt}

    def counts(self) -> dict:
        return {"checked": self.checked, "bytes": self.bytes, "missing": len(self.missing),
                "corrupt": len(self.corrupt)}


def verify_blobs(sample: float = 1.0, seed: int | None = None) -> VerifyReport:
    """Stream every recorded blob (or a random ``sample`` fraction of them) through sha256."""
    with recorded_run(OperationRun.Kind.VERIFY) as run:
        report = _verify(sample, seed)
        run.summary = {**report.counts(), "sample": sample}
        run.succeeded = report.healthy
    return report


def _verify(sample: float, seed: int | None) -> VerifyReport:
    store = blob_store()
    chooser = random.Random(seed)
    report = VerifyReport()
    for digest, size in Blob.objects.order_by("digest").values_list("digest", "size").iterator():
        if sample < 1.0 and chooser.random() >= sample:
            continue
        report.checked += 1
        hasher, read = hashlib.sha256(), 0
        try:
            with store.open(digest) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    read += len(chunk)
        except BlobNotFound:
            report.missing.append(digest)
            continue
        report.bytes += read
        actual = digest_of(hasher.hexdigest())
        if actual != digest or read != size:
            report.corrupt.append({"digest": digest, "actual": actual, "size": size, "actual_size": read})
    if not report.healthy:
        logger.error("verify_blobs: %d missing, %d corrupt of %d checked", len(report.missing),
                     len(report.corrupt), report.checked)
    return report
