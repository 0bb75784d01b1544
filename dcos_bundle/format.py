"""The `.dcos` bundle format: member names, media types and the manifest (see docs/bundle-format.md).

Plain Python (no Django) so the server and the command-line tools share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dcos_bundle.digests import parse_digest

BUNDLE_FORMAT_VERSION = 1
BUNDLE_SUFFIX = ".dcos"
BUNDLE_MEDIA_TYPE = "application/vnd.dcos.universe.package+zip;version=v1"

METADATA_MEMBER = "metadata.json"
MANIFEST_MEMBER = "manifest.json"
ASSETS_DIR = "assets/sha256/"
IMAGES_DIR = "images/"
OCI_LAYOUT_MEMBER = IMAGES_DIR + "oci-layout"
OCI_INDEX_MEMBER = IMAGES_DIR + "index.json"
OCI_BLOBS_DIR = IMAGES_DIR + "blobs/sha256/"
OCI_LAYOUT_CONTENT = {"imageLayoutVersion": "1.0.0"}

OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


class BlobRole(StrEnum):
    """What a blob of a bundle is: an asset file, or part of an image."""

    ASSET = "asset"
    MANIFEST = "manifest"
    CONFIG = "config"
    LAYER = "layer"

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self]


_ROLE_LABELS = {BlobRole.ASSET: "Asset file", BlobRole.MANIFEST: "Image manifest or index",
                BlobRole.CONFIG: "Image config", BlobRole.LAYER: "Image layer"}


def json_pointer(*parts: str | int) -> str:
    """An RFC 6901 pointer: unambiguous even for keys holding dots or slashes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def bundle_file_name(name: str, version: str) -> str:
    return f"{name}-{version}{BUNDLE_SUFFIX}"


def asset_member(digest: str) -> str:
    return ASSETS_DIR + parse_digest(digest)


def image_blob_member(digest: str) -> str:
    return OCI_BLOBS_DIR + parse_digest(digest)


@dataclass(frozen=True)
class AssetEntry:
    """One downloaded file: where it came from, what it is, and where the metadata uses it."""

    url: str
    digest: str
    size: int
    file_name: str
    # JSON pointers (RFC 6901) into the metadata, e.g. "/resource/assets/uris/jre-tar-gz".
    used_at: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "url": self.url,
            "digest": self.digest,
            "size": self.size,
            "fileName": self.file_name,
            "usedAt": list(self.used_at),
        }

    @classmethod
    def from_json(cls, data: dict) -> AssetEntry:
        return cls(data["url"], data["digest"], data["size"], data["fileName"], tuple(data.get("usedAt", ())))


@dataclass(frozen=True)
class ImageEntry:
    """One Docker image: the reference the package names and the manifest it was exported as."""

    reference: str
    manifest_digest: str
    used_at: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"reference": self.reference, "manifestDigest": self.manifest_digest, "usedAt": list(self.used_at)}

    @classmethod
    def from_json(cls, data: dict) -> ImageEntry:
        return cls(data["reference"], data["manifestDigest"], tuple(data.get("usedAt", ())))


@dataclass
class Manifest:
    name: str
    version: str
    built_by: dict
    built_at: str
    assets: list[AssetEntry] = field(default_factory=list)
    images: list[ImageEntry] = field(default_factory=list)
    format_version: int = BUNDLE_FORMAT_VERSION

    def to_json(self) -> dict:
        return {
            "bundleFormatVersion": self.format_version,
            "package": {"name": self.name, "version": self.version},
            "builtBy": self.built_by,
            "builtAt": self.built_at,
            "assets": [asset.to_json() for asset in self.assets],
            "images": [image.to_json() for image in self.images],
        }

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        return cls(
            name=data["package"]["name"],
            version=data["package"]["version"],
            built_by=data.get("builtBy", {}),
            built_at=data.get("builtAt", ""),
            assets=[AssetEntry.from_json(item) for item in data.get("assets", [])],
            images=[ImageEntry.from_json(item) for item in data.get("images", [])],
            format_version=data["bundleFormatVersion"],
        )

