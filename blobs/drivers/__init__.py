"""Content-addressed blob storage: one interface (``base``), one driver per backend.

``open_store`` turns a storage URL into a driver:

- ``file:///abs/path`` (or a plain path): :class:`~blobs.drivers.local.LocalBlobStore`
- ``s3://bucket/optional/prefix``: :class:`~blobs.drivers.s3.S3BlobStore`; endpoint,
  credentials and region come as keyword arguments, never inside the URL.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from dcos_bundle.digests import InvalidDigest, parse_digest

from .base import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    BlobStoreError,
    BlobStoreUnavailable,
    DigestMismatch,
    InvalidRange,
    SizeMismatch,
    StorageUsage,
)
# Both drivers come with the package. The S3 one brings boto3, some 0.17 s once per process start whichever
# storage is configured: the registry's processes live long, and backups and storage migration speak S3 in any
# case.
from .local import LocalBlobStore
from .s3 import S3BlobStore

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobStoreError",
    "BlobStoreUnavailable",
    "DigestMismatch",
    "InvalidDigest",
    "InvalidRange",
    "SizeMismatch",
    "StorageUsage",
    "UnsupportedStorageURL",
    "open_store",
    "parse_digest",
]


class UnsupportedStorageURL(BlobStoreError, ValueError):
    code = "unsupported_storage_url"


def open_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    region: str | None = None,
    public_endpoint_url: str | None = None,
) -> BlobStore:
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedStorageURL(f"{url!r}: a file URL must name a local path (file:///path).")
        return LocalBlobStore(unquote(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise UnsupportedStorageURL(f"{url!r}: an S3 URL must name a bucket (s3://bucket/prefix).")
        return S3BlobStore(
            bucket=parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint_url=endpoint_url,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            region=region,
            public_endpoint_url=public_endpoint_url,
        )
    raise UnsupportedStorageURL(f"{url!r}: storage URLs start with file:// or s3://.")
