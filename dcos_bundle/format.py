"""The `.dcos` bundle format: member names, media types and the manifest (see docs/bundle-format.md).

Plain Python (no Django) so the server and the command-line tools share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dcos_bundle.digests import checked_digest, parse_digest
from dcos_bundle.errors import ErrorCode, RegistryError

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
# Sizes are signed 64-bit numbers, as OCI descriptors and the catalogue's columns have them.
MAX_BLOB_SIZE = 2**63 - 1


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


def is_blob_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BLOB_SIZE


_KINDS = {str: "a string", int: "an integer", dict: "an object", list: "an array"}
_REQUIRED = object()


class _Fields:
    """One object of manifest.json, read field by field: a missing or mistyped field is ``invalid_manifest``."""

    def __init__(self, data: Any, *where: str | int):
        self._where = where
        if not isinstance(data, dict):
            raise self._invalid(f"{self._place()} must be an object")
        self._data = data

    def _place(self, *key: str | int) -> str:
        return json_pointer(*self._where, *key) or "the document"

    def _invalid(self, problem: str, *key: str | int) -> RegistryError:
        return RegistryError(ErrorCode.INVALID_MANIFEST, f"{MANIFEST_MEMBER}: {problem}.", member=MANIFEST_MEMBER,
                             at=self._place(*key))

    def get(self, key: str, kind: type, default: Any = _REQUIRED) -> Any:
        if key not in self._data:
            if default is _REQUIRED:
                raise self._invalid(f"{self._place()} lacks the field {key!r}", key)
            return default
        value = self._data[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise self._invalid(f"{self._place(key)} must be {_KINDS[kind]}", key)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, [])
        if not all(isinstance(value, str) for value in values):
            raise self._invalid(f"{self._place(key)} must be an array of strings", key)
        return tuple(values)

    def digest(self, key: str) -> str:
        return checked_digest(self.get(key, str), ErrorCode.INVALID_MANIFEST, f"{MANIFEST_MEMBER}: {self._place(key)}",
                              member=MANIFEST_MEMBER, at=self._place(key))

    def size(self, key: str) -> int:
        size = self.get(key, int)
        if not is_blob_size(size):
            raise self._invalid(f"{self._place(key)} must be a number of bytes from 0 to {MAX_BLOB_SIZE}", key)
        return size

    def each(self, key: str) -> list[_Fields]:
        return [_Fields(item, *self._where, key, number) for number, item in enumerate(self.get(key, list, []))]


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
        return cls._read(_Fields(data))

    @classmethod
    def _read(cls, fields: _Fields) -> AssetEntry:
        return cls(fields.get("url", str), fields.digest("digest"), fields.size("size"), fields.get("fileName", str),
                   fields.strings("usedAt"))


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
        return cls._read(_Fields(data))

    @classmethod
    def _read(cls, fields: _Fields) -> ImageEntry:
        return cls(fields.get("reference", str), fields.digest("manifestDigest"), fields.strings("usedAt"))


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
    def from_json(cls, data: Any) -> Manifest:
        """The manifest in a parsed manifest.json; ``invalid_manifest`` names the first field missing or mistyped."""
        fields = _Fields(data)
        package = _Fields(fields.get("package", dict), "package")
        return cls(
            name=package.get("name", str),
            version=package.get("version", str),
            built_by=fields.get("builtBy", dict, {}),
            built_at=fields.get("builtAt", str, ""),
            assets=[AssetEntry._read(item) for item in fields.each("assets")],
            images=[ImageEntry._read(item) for item in fields.each("images")],
            format_version=fields.get("bundleFormatVersion", int),
        )

