"""The index /v2 reads: every image of every published version, by the repository and tag it is pulled as.

Rows are written in the transaction that publishes (or restores) their version and go with it
(CASCADE), so the index never shows an image its version does not.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable

from dcos_bundle.format import BlobRole

from .coordinates import split_reference
from .models import PublishedImage

BATCH = 1000


def manifest_uses(links):
    """(version id, reference, manifest digest) of the image manifests among ``links`` (VersionBlob rows)."""
    return links.filter(role=BlobRole.MANIFEST).order_by("pk").values_list("version_id", "name", "blob_id")


def index_images(uses: Iterable[tuple[int, str, str]], model=PublishedImage) -> None:
    """Index the images of these manifest uses, in batches (``uses`` may stream).

    ``model`` is PublishedImage, or its historical twin when a migration fills the index.
    """
    rows = (model(version_id=version_id, reference=reference, repository=repository, tag=tag or "",
                  manifest_id=digest)
            for version_id, reference, digest in uses
            for repository, tag, _ in [split_reference(reference)])
    while batch := list(islice(rows, BATCH)):
        model.objects.bulk_create(batch)

