"""Re-hashing stored blobs: finding the ones the storage lost or damaged, and repairing them from a backup."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

from blobs.drivers import BlobNotFound, BlobStore, BlobStoreError
from blobs.drivers.transfer import copy_blob
from blobs.models import Blob
from blobs.store import blob_store
from dcos_bundle.digests import hash_stream
from operations.backup import open_backup
from operations.models import OperationRun
from operations.runs import recorded_run

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    checked: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[dict] = field(default_factory=list)
    # Missing or corrupt blobs copied back from a backup, and those it could not give back.
    repaired: list[str] = field(default_factory=list)
    unrepairable: list[dict] = field(default_factory=list)

    @property
    def broken(self) -> list[str]:
        return self.missing + [damage["digest"] for damage in self.corrupt]

    @property
    def healthy(self) -> bool:
        return set(self.broken) <= set(self.repaired)

    def to_json(self) -> dict:
        return {"checked": self.checked, "bytes": self.bytes, "missing": self.missing, "corrupt": self.corrupt,
                "repaired": self.repaired, "unrepairable": self.unrepairable}

    def counts(self) -> dict:
        return {"checked": self.checked, "bytes": self.bytes, "missing": len(self.missing),
                "corrupt": len(self.corrupt), "repaired": len(self.repaired),
                "unrepairable": len(self.unrepairable)}


def verify_blobs(sample: float = 1.0, seed: int | None = None, repair_from: str | None = None) -> VerifyReport:
    """Stream every recorded blob (or a random ``sample`` fraction of them) through sha256.

    With ``repair_from`` (a backup location) missing and corrupt blobs are copied back from the
    backup's blob area, verified on the way.
    """
    # An unusable backup is refused before anything is read.
    backup = open_backup(repair_from)[0] if repair_from else None
    with recorded_run(OperationRun.Kind.VERIFY, target=repair_from or "") as run:
        report = _verify(sample, seed)
        if backup and report.broken:
            _repair(report, backup.blobs)
        run.summary = {**report.counts(), "sample": sample}
        run.succeeded = report.healthy
    return report


def _repair(report: VerifyReport, backup: BlobStore) -> None:
    store = blob_store()
    sizes = dict(Blob.objects.filter(digest__in=report.broken).values_list("digest", "size"))
    for digest in report.broken:
        if not backup.exists(digest):
            report.unrepairable.append({"digest": digest, "reason": "not in the backup"})
            continue
        # A store keeps a digest it already holds: the damaged copy must go first.
        store.delete(digest)
        try:
            copy_blob(backup, store, digest, sizes[digest])
        except BlobStoreError as error:
            report.unrepairable.append({"digest": digest, "reason": f"damaged in the backup: {error}"})
        else:
            report.repaired.append(digest)
    logger.warning("verify_blobs: repaired %d blobs from the backup, %d could not be repaired",
                   len(report.repaired), len(report.unrepairable))


def _verify(sample: float, seed: int | None) -> VerifyReport:
    store = blob_store()
    chooser = random.Random(seed)
    report = VerifyReport()
    for digest, size in Blob.objects.order_by("digest").values_list("digest", "size").iterator():
        if sample < 1.0 and chooser.random() >= sample:
            continue
        report.checked += 1
        try:
            with store.open(digest) as stream:
                actual, read = hash_stream(stream)
        except BlobNotFound:
            report.missing.append(digest)
            continue
        report.bytes += read
        if actual != digest or read != size:
            report.corrupt.append({"digest": digest, "actual": actual, "size": size, "actual_size": read})
    if not report.healthy:
        logger.error("verify_blobs: %d missing, %d corrupt of %d checked", len(report.missing),
                     len(report.corrupt), report.checked)
    return report
