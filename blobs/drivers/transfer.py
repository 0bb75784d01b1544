"""Copying blobs between stores (backup, restore, repair, storage migration)."""

from __future__ import annotations

from .base import BlobStore


def copy_blob(source: BlobStore, target: BlobStore, digest: str, size: int | None = None) -> bool:
    """Copy one blob, re-hashing it on the way; False if the target already holds it.

    A blob that does not hash to its digest raises DigestMismatch (or SizeMismatch) and leaves
    nothing in the target; a blob the source lacks raises BlobNotFound.
    """
    if target.exists(digest):
        return False
    with source.open(digest) as stream:
        target.put(stream, expected_digest=digest, expected_size=size)
    return True
