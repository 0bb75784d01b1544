"""Finding a package's asset URLs and downloading them, hashing as they stream to disk."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

from dcos_bundle.digests import HashingCopier
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import AssetEntry
from dcos_bundle.universe.resource import file_name_of, is_downloadable

DOWNLOAD_TIMEOUT_SECONDS = 60
USER_AGENT = "dcos-registry-builder"


def parse_mirror(text: str) -> tuple[str, str]:
    """``FROM=TO`` of ``--asset-mirror``."""
    source, separator, target = text.partition("=")
    if not separator or not source or not target:
        raise RegistryError(ErrorCode.INVALID_MIRROR, f"--asset-mirror {text!r} must have the form FROM=TO.", mirror=text)
    return source, target


def mirrored(url: str, mirrors: list[tuple[str, str]]) -> str:
    """The URL to fetch: the longest matching mirror prefix replaced, or the URL itself."""
    for source, target in sorted(mirrors, key=lambda pair: len(pair[0]), reverse=True):
        if url.startswith(source):
            return target + url[len(source):]
    return url


@dataclass(frozen=True)
class DownloadedAsset:
    entry: AssetEntry
    path: Path


def download(
    url: str,
    fetch_url: str,
    used_at: list[str],
    directory: Path,
    on_start: Callable[[str, int | None], None] = lambda name, total: None,
    on_bytes: Callable[[int], None] = lambda count: None,
) -> DownloadedAsset:
    """Stream ``fetch_url`` (http, https or file) to a file in ``directory``, hashing as it goes."""
    scheme = urlsplit(fetch_url).scheme
    if scheme not in ("http", "https", "file"):
        raise RegistryError(
            ErrorCode.ASSET_UNREACHABLE, f"Cannot download {fetch_url}: only http, https and file URLs are supported.",
            url=url, fetched=fetch_url,
        )
    request = urllib.request.Request(fetch_url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        raise RegistryError(
            ErrorCode.ASSET_UNREACHABLE, f"Downloading {fetch_url} failed with HTTP {error.code} {error.reason}.",
            url=url, fetched=fetch_url, status=error.code,
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RegistryError(
            ErrorCode.ASSET_UNREACHABLE, f"Cannot download {fetch_url}: {reason}.", url=url, fetched=fetch_url
        ) from None
    fd, name = tempfile.mkstemp(dir=directory, prefix="asset-")
    copier = HashingCopier()
    try:
        with response, os.fdopen(fd, "wb") as file:
            length = response.headers.get("Content-Length")
            on_start(file_name_of(url), int(length) if length and length.isdigit() else None)
            for chunk in copier.chunks(response):
                file.write(chunk)
                on_bytes(len(chunk))
    except OSError as error:
        Path(name).unlink(missing_ok=True)
        raise RegistryError(
            ErrorCode.ASSET_UNREACHABLE, f"Download of {fetch_url} broke off after {copier.size} bytes: {error}.",
            url=url, fetched=fetch_url,
        ) from None
    entry = AssetEntry(url, copier.digest, copier.size, file_name_of(url), tuple(used_at))
    return DownloadedAsset(entry, Path(name))


def cli_content_hashes(metadata: dict) -> Iterator[tuple[str, dict]]:
    """(url, hash entry) for every sha256 contentHash a downloaded CLI binary declares."""
    binaries = (metadata.get("resource") or {}).get("cli", {}).get("binaries") or {}
    for platforms in binaries.values():
        for binary in (platforms or {}).values():
            if not is_downloadable(binary.get("url")):
                continue
            for content_hash in binary.get("contentHash", []):
                if content_hash.get("algo") == "sha256":
                    yield binary["url"], content_hash


def check_cli_content_hashes(metadata: dict, digests: dict[str, str], accept_changed: bool) -> list[str]:
    """Compare each CLI binary with its declared contentHash.

    A mismatch is an error, unless ``accept_changed``: then the metadata is updated to the
    downloaded content (the binary was re-released) and the URLs are returned for the report.
    """
    changed = []
    for url, content_hash in cli_content_hashes(metadata):
        actual = digests[url].split(":", 1)[1]
        if content_hash["value"].lower() == actual:
            continue
        if not accept_changed:
            raise RegistryError(
                ErrorCode.ASSET_CONTENT_HASH_MISMATCH,
                f"CLI binary {url} hashes to sha256 {actual}, but the package declares {content_hash['value']}.",
                url=url, expected=content_hash["value"], actual=actual,
            )
        content_hash["value"] = actual
        changed.append(url)
    return changed
