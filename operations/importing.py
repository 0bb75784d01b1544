"""Importing a transfer set (``operations.transfer``) into this registry, through the ingest pipeline's stages.

1. The manifest is checked against SHA256SUMS; each version is sorted out: unchanged (the registry
   holds it with the same content), to add, or to replace (only with ``replace``; otherwise a
   different version of the same name and version refuses the whole import). Every blob a version
   to take in needs must be carried or already held.
2. Every version to take in is prepared as an upload is (``ingest.carried``): validated, and every
   blob verified (digest and size, layers inflated against their diff_id) while it streams from the
   transfer set into the blob store. A blob several versions share is read once.
3. Only when every version passed, each is published, in its own transaction, in release order.

A failure in 1 or 2 changes nothing: the jobs fail and release the blobs only they claimed. An
import cut short (the process killed) is completed by running it again: what was published is
then unchanged, blobs already stored are checked and not written again, and the reaper ends the
abandoned jobs.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field

from access.audit import Actor
from blobs.drivers import BlobStore
from blobs.store import StorageBackendMismatch, blob_store, ensure_backend_lock
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import (
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    OCI_INDEX_MEMBER,
    BlobRole,
    asset_member,
    image_blob_member,
)
from dcos_bundle.reader import BundleReader
from ingest import carried
from ingest.models import IngestJob
from ingest.stages.inspect import Inventory, MemberInfo
from ingest.stages.publish import find_version
from operations.backup import BackupError, open_location
from operations.models import OperationRun
from operations.restore import create_schema_if_empty
from operations.runs import recorded_run
from operations.transfer import TransferSet, open_transfer

IMPORTER = Actor("user:manage.py import")


class CarriedBundle(BundleReader):
    """One version of a transfer set, read as the bundle it was published from: its documents, and its blobs from
    the transfer's stream (or, for those the transfer left out, from the registry's own store)."""

    def __init__(self, transfer: TransferSet, record: dict, store: BlobStore):
        self.path = f"{record['package']}-{record['version']} in {transfer.location.url}"
        self._transfer = transfer
        self._store = store
        self._documents = {METADATA_MEMBER: record["metadata_text"].encode()}
        if record["manifest"] is not None:
            self._documents[MANIFEST_MEMBER] = json.dumps(record["manifest"]).encode()
        if record["image_index"] is not None:
            self._documents[OCI_INDEX_MEMBER] = json.dumps(record["image_index"]).encode()
        self._blobs = {(asset_member if blob["role"] == BlobRole.ASSET else image_blob_member)(blob["digest"]):
                       (blob["digest"], blob["size"]) for blob in record["blobs"]}
        self._names = set(self._documents) | set(self._blobs)

    def close(self) -> None:
        pass

    def size(self, member: str) -> int:
        return len(self._documents[member]) if member in self._documents else self._blobs[member][1]

    def open(self, member: str):
        if member in self._documents:
            return io.BytesIO(self._documents[member])
        if member not in self._blobs:
            raise RegistryError(ErrorCode.MEMBER_MISSING, f"{self.path} has no member {member}.", member=member)
        digest = self._blobs[member][0]
        return self._transfer.open_blob(digest) if digest in self._transfer.carried else self._store.open(digest)

    def inventory(self) -> Inventory:
        """The members as the inspect stage would list them (their sizes are what validation compares)."""
        members = {name: MemberInfo(name, 0, 0, self.size(name), self.size(name), 0, True) for name in self._names}
        return Inventory(members, sum(info.size for info in members.values()))


@dataclass(kw_only=True)
class ImportReport:
    source: str
    transfer: str
    versions: int = 0
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    blobs_carried: int = 0
    bytes_carried: int = 0
    schema_created: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    def counts(self) -> dict:
        return {"transfer": self.transfer, "versions": self.versions, "added": len(self.added),
                "replaced": len(self.replaced), "unchanged": len(self.unchanged), "blobs_carried": self.blobs_carried,
                "bytes_carried": self.bytes_carried}


def _label(record: dict) -> str:
    return f"{record['package']} {record['version']}"


def import_transfer(source: str, *, replace: bool = False, actor: Actor = IMPORTER,
                    run: OperationRun | None = None) -> ImportReport:
    """Import the transfer set at ``source``; see the module's description."""
    schema_created = create_schema_if_empty()
    with recorded_run(OperationRun.Kind.IMPORT, target=source, run=run) as run:
        store = blob_store()
        try:
            ensure_backend_lock(store)
        except StorageBackendMismatch as mismatch:
            raise RegistryError(ErrorCode.STORAGE_MOVED, f"Refusing to import: this registry's blobs live in "
                                f"{mismatch.locked.identity}, but STORAGE_URL points at {store.identity}.") from None
        try:
            location = open_location(source)
        except BackupError as error:
            raise RegistryError(ErrorCode.TRANSFER_INVALID, str(error), source=source) from None
        transfer = open_transfer(location)
        report = ImportReport(source=source, transfer=transfer.manifest["transfer"], schema_created=schema_created,
                              versions=len(transfer.versions), blobs_carried=len(transfer.carried),
                              bytes_carried=sum(blob["size"] for blob in transfer.carried.values()))
        taken = _sort_out(transfer, store, replace, report)
        verified = carried.Verified()
        prepared = []
        try:
            for record in taken:
                job = carried.start(actor=actor, bundle_name=f"{_label(record)} from transfer {report.transfer}",
                                    bundle_digest=record["bundle_digest"], replace=replace, verified=verified)
                reader = CarriedBundle(transfer, record, store)
                prepared.append((record, job, carried.prepare(job, reader, reader.inventory(), verified)))
            for record, job, plan in prepared:
                outcome = carried.publish_prepared(job, plan, verified)
                # Unchanged too: the same version, published meanwhile by an upload or another import.
                {IngestJob.Outcome.REPLACED: report.replaced, IngestJob.Outcome.UNCHANGED: report.unchanged}.get(
                    outcome, report.added).append(_label(record))
        except RegistryError as error:
            _abandon(verified, error)
            raise _refused(error, published=len(report.added) + len(report.replaced)) from None
        except BaseException as error:
            _abandon(verified, RegistryError(ErrorCode.INTERNAL_ERROR, f"The import stopped ({type(error).__name__})"
                                             "; run it again to complete it."))
            raise
        run.summary = report.counts()
    return report


def _sort_out(transfer: TransferSet, store: BlobStore, replace: bool, report: ImportReport) -> list[dict]:
    """The versions to take in; the others are noted unchanged. Refuses conflicts and blobs nowhere to be found."""
    taken = []
    for record in transfer.versions:
        existing = find_version(record["package"], record["version"])
        if existing is not None and existing.content_digest == record["content_digest"]:
            report.unchanged.append(_label(record))
            continue
        if existing is not None and not replace:
            raise RegistryError(
                ErrorCode.VERSION_CONFLICT, f"Version {record['version']} of package {record['package']} is already "
                "published here with different content; import with replace to swap it. Nothing was imported.",
                package=record["package"], version=record["version"])
        for blob in record["blobs"]:
            if blob["digest"] not in transfer.carried and not store.exists(blob["digest"]):
                raise RegistryError(
                    ErrorCode.TRANSFER_INCOMPLETE, f"Blob {blob['digest']} of {_label(record)} is neither in the "
                    "transfer set nor in this registry (was the export made from another registry's inventory?). "
                    "Nothing was imported.", digest=blob["digest"], package=record["package"],
                    version=record["version"])
        taken.append(record)
    return taken


def _abandon(verified: carried.Verified, error: RegistryError) -> None:
    for job in IngestJob.objects.filter(pk__in=verified.jobs, state__in=IngestJob.UNFINISHED_STATES):
        carried.abandon(job, error)


def _refused(error: RegistryError, published: int) -> RegistryError:
    """The import's error: a blob that does not match its digest is damage to the transfer set, whatever stage saw
    it; the message says what is left."""
    left = (" Nothing was imported." if not published else
            f" The {published} versions published before it stay; run the import again to complete it.")
    if error.code in (ErrorCode.DIGEST_MISMATCH, ErrorCode.SIZE_MISMATCH, ErrorCode.MEMBER_CORRUPT):
        return RegistryError(ErrorCode.TRANSFER_DAMAGED, f"{error.message} The transfer set was changed or damaged on "
                             f"its way.{left}", **error.details)
    return RegistryError(error.code, error.message + left, **error.details)

