"""Stage 1: the staged bundle is the file the uploader meant: its sha256 is checked when one was declared.

Monolithic uploads are hashed as they arrive, so this stage only reads the staged bundle of a resumable
upload, whose chunks came over several requests.
"""

from __future__ import annotations

from typing import BinaryIO

from dcos_bundle.digests import HashingCopier
from dcos_bundle.errors import ErrorCode, RegistryError
from ingest.models import IngestJob
from ingest.progress import StageProgress


def check_bundle_digest(job: IngestJob, bundle: BinaryIO, progress: StageProgress) -> str:
    """The sha256 of the staged ``bundle`` (a file at its start), computed if needed; RegistryError if it is
    not the declared one."""
    digest = job.bundle_digest
    if not digest:
        copier = HashingCopier()
        for chunk in copier.chunks(bundle):
            progress.add(len(chunk))
        digest = copier.digest
        progress.flush()
    if job.expected_digest and digest != job.expected_digest:
        raise RegistryError(
            ErrorCode.UPLOAD_DIGEST_MISMATCH,
            f"The uploaded bundle hashes to {digest}, not to the {job.expected_digest} the upload declared; "
            "it was damaged on the way. Upload it again.",
            expected=job.expected_digest, actual=digest,
        )
    return digest
