"""Stage 2: the bundle's metadata, manifest and image index make sense together.

Checks the metadata (the project's own Universe rules, then the lengths the catalogue's columns
hold), renders the Marathon template with the default options, and matches the manifest's
inventory against the metadata and the ZIP's members. The result is the plan the later stages
work through: nothing in it is too long to be written.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import asdict, dataclass, field

from dcos_bundle.digests import digest_bytes
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import OCI_MANIFEST_MEDIA_TYPE, BlobRole, asset_member, image_blob_member
from dcos_bundle.reader import BundleReader, parse_descriptor, reference_of
from dcos_bundle.universe.metadata import check_metadata
from dcos_bundle.universe.resource import asset_urls, image_references
from dcos_bundle.universe.template import render_marathon_app
from ingest.models import JobBlob
from packages_app.models import Package, PackageVersion

from .inspect import Inventory

DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
IMAGE_MANIFEST_MEDIA_TYPES = (OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE)
# The metadata fields the catalogue keeps in columns of their own, and those columns.
METADATA_COLUMNS = {
    "name": Package._meta.get_field("name"),
    "version": PackageVersion._meta.get_field("version"),
    "minDcosReleaseVersion": PackageVersion._meta.get_field("min_dcos_release_version"),
}
# Where a blob's name is kept: an asset's URL, an image's reference (VersionBlob.name is as long).
BLOB_NAME_COLUMN = JobBlob._meta.get_field("name")


@dataclass(frozen=True)
class PlannedBlob:
    """A blob the bundle brings: where it is in the ZIP and what it will be in the catalogue."""

    digest: str
    size: int
    media_type: str
    role: str
    name: str
    member: str
    diff_id: str = ""


@dataclass
class BundlePlan:
    metadata: dict
    content_digest: str
    assets: list[PlannedBlob] = field(default_factory=list)
    image_manifests: list[PlannedBlob] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.metadata["name"]

    def to_json(self) -> dict:
        """What the job keeps (``IngestJob.plan``), so that ``finish`` publishes without validating again."""
        return asdict(self)

    @classmethod
    def from_json(cls, saved: dict) -> BundlePlan:
        return cls(saved["metadata"], saved["content_digest"], [PlannedBlob(**blob) for blob in saved["assets"]],
                   [PlannedBlob(**blob) for blob in saved["image_manifests"]])

    @property
    def version(self) -> str:
        return self.metadata["version"]


def _check_fits(value: str, column, what: str, **details) -> None:
    if len(value) > column.max_length:
        raise RegistryError(
            ErrorCode.FIELD_TOO_LONG, f"{what} is {len(value)} characters long; the registry keeps at most "
            f"{column.max_length}.", **details, length=len(value), limit=column.max_length,
        )


def _check_columns(metadata: dict) -> None:
    for field, column in METADATA_COLUMNS.items():
        if isinstance(metadata.get(field), str):
            _check_fits(metadata[field], column, f"metadata.json: {field}", field=field)


def _member(inventory: Inventory, name: str, size: int, what: str):
    info = inventory.members.get(name)
    if info is None:
        raise RegistryError(ErrorCode.MEMBER_MISSING, f"{what} is not in the bundle (no member {name}).", member=name)
    if info.size != size:
        raise RegistryError(
            ErrorCode.SIZE_MISMATCH, f"{what}: member {name} is {info.size} bytes, but {size} were declared.",
            member=name, expected=size, actual=info.size,
        )


def validate_bundle(reader: BundleReader, inventory: Inventory) -> BundlePlan:
    metadata = reader.metadata()
    check_metadata(metadata)
    _check_columns(metadata)
    render_marathon_app(metadata)
    manifest = reader.manifest()
    if manifest is None:
        # A metadata-only bundle carries no files: its URLs keep pointing where they did.
        return BundlePlan(metadata, _content_digest(metadata, [], []))

    if (manifest.name, manifest.version) != (metadata["name"], metadata["version"]):
        raise RegistryError(
            ErrorCode.MANIFEST_MISMATCH,
            f"manifest.json is for {manifest.name} {manifest.version}, metadata.json for "
            f"{metadata['name']} {metadata['version']}.",
        )
    urls = asset_urls(metadata)
    for asset in manifest.assets:
        _check_fits(asset.url, BLOB_NAME_COLUMN, f"The URL of asset {asset.url[:100]}…", url=asset.url[:100])
    carried = {asset.url for asset in manifest.assets}
    for url in urls:
        if url not in carried:
            raise RegistryError(ErrorCode.ASSET_MISSING, f"The bundle does not carry {url}, which the metadata names.", url=url)
    assets = []
    for asset in manifest.assets:
        if asset.url not in urls:
            raise RegistryError(
                ErrorCode.MANIFEST_MISMATCH, f"manifest.json lists {asset.url}, which the metadata does not name.",
                url=asset.url,
            )
        member = asset_member(asset.digest)
        _member(inventory, member, asset.size, f"Asset {asset.url}")
        media_type = mimetypes.guess_type(asset.file_name)[0] or "application/octet-stream"
        assets.append(PlannedBlob(asset.digest, asset.size, media_type, BlobRole.ASSET, asset.url, member))

    references = image_references(metadata)
    for reference in references:
        _check_fits(reference, BLOB_NAME_COLUMN, f"Image reference {reference[:100]}…", reference=reference[:100])
    listed = {image.reference: image.manifest_digest for image in manifest.images}
    if set(listed) != set(references):
        missing = sorted(set(references) - set(listed)) or sorted(set(listed) - set(references))
        raise RegistryError(
            ErrorCode.MANIFEST_MISMATCH,
            f"manifest.json's images and the metadata's Docker images differ: {', '.join(missing)}.",
            references=missing,
        )
    image_manifests = _indexed_manifests(reader, inventory, listed)
    return BundlePlan(
        metadata,
        _content_digest(metadata, assets, image_manifests),
        assets,
        image_manifests,
    )


def _indexed_manifests(reader: BundleReader, inventory: Inventory, listed: dict[str, str]) -> list[PlannedBlob]:
    if not listed:
        return []
    index = reader.oci_index()
    if index is None:
        raise RegistryError(ErrorCode.IMAGE_INDEX_MISSING, "The bundle lists images but has no images/index.json.")
    entries = {}
    for entry in index.get("manifests", []):
        reference = reference_of(entry)
        if reference in listed:
            entries[reference] = entry
    planned = []
    for reference, digest in listed.items():
        entry = entries.get(reference)
        if entry is None or entry.get("digest") != digest:
            raise RegistryError(
                ErrorCode.IMAGE_INDEX_MISMATCH,
                f"images/index.json has no manifest {digest} for {reference}, which manifest.json lists.",
                reference=reference,
            )
        descriptor = parse_descriptor(entry, f"The index entry of image {reference}", reference=reference)
        if descriptor.media_type not in IMAGE_MANIFEST_MEDIA_TYPES:
            raise RegistryError(
                ErrorCode.UNSUPPORTED_IMAGE, f"Image {reference}: index entry of type {descriptor.media_type!r} is not an "
                "image manifest.", reference=reference,
            )
        member = image_blob_member(digest)
        _member(inventory, member, descriptor.size, f"Manifest of image {reference}")
        planned.append(PlannedBlob(digest, descriptor.size, descriptor.media_type, BlobRole.MANIFEST, reference, member))
    return planned


def _content_digest(metadata: dict, assets: list[PlannedBlob], manifests: list[PlannedBlob]) -> str:
    """Same metadata and same files, same digest: a rebuilt bundle of a published version is no conflict."""
    content = {
        "metadata": metadata,
        "assets": sorted((blob.name, blob.digest) for blob in assets),
        "images": sorted((blob.name, blob.digest) for blob in manifests),
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return digest_bytes(encoded)
