"""The repository JSON: each published version as /repo serves it, and a whole repository for one client."""

from __future__ import annotations

import copy
import json
import logging
from collections import defaultdict
from dataclasses import dataclass

from access.clusters import EVERYTHING, Visibility
from dcos_bundle.universe.resource import asset_urls, file_name_of, image_references
from packages_app.coordinates import registry_host, resource_url, split_reference
from packages_app.models import PackageVersion, VersionBlob

from .dcos_rules import CARRIES, downgrade_to_v3, escape_properties, release_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    min_dcos: tuple[int, ...]
    packaging_version: str
    package: dict  # metadata + releaseVersion, URLs rewritten
    encoded: bytes  # the same as JSON: most variants reuse it as it is


def encode(document) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _replace_at(document, pointer: str, value) -> None:
    """Set the value an RFC 6901 pointer names (the pointers asset_urls and image_references give)."""
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    for part in parents:
        document = document[int(part) if isinstance(document, list) else part]
    document[int(last) if isinstance(document, list) else last] = value


def package_entry(name: str, version: str, release_version: int, metadata: dict, assets: dict[str, str],
                  images: dict[str, str]) -> Entry:
    """One version as /repo serves it; ``assets`` maps stored URLs, ``images`` stored references, to digests."""
    package = {**metadata, "releaseVersion": release_version}
    if "resource" in package:
        # Rewritten below: a copy, so the caller's metadata stays as stored.
        package["resource"] = copy.deepcopy(package["resource"])
    packaging_version = package["packagingVersion"]
    if packaging_version not in CARRIES["v5"]:
        raise ValueError(f"packagingVersion {packaging_version!r}")
    # Only what the version stored is ours to serve; a metadata-only version keeps its original URLs.
    for url, pointers in asset_urls(package).items():
        if url in assets:
            for pointer in pointers:
                _replace_at(package, pointer, resource_url(name, version, assets[url], file_name_of(url)))
    for reference, pointers in image_references(package).items():
        if reference in images:
            pulled = f"{registry_host()}/{split_reference(reference)[0]}@{images[reference]}"
            for pointer in pointers:
                _replace_at(package, pointer, pulled)
    min_dcos = release_key(package.get("minDcosReleaseVersion") or "0.0")
    return Entry(min_dcos, packaging_version, package, encode(package))


def load_entries() -> list[Entry]:
    """Every published version, ready to serve: two queries whatever the catalogue's size."""
    stored: dict[int, tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
    links = VersionBlob.objects.filter(role__in=[VersionBlob.Role.ASSET, VersionBlob.Role.MANIFEST])
    for version_id, role, name, digest in links.values_list("version_id", "role", "name", "blob_id"):
        stored[version_id][0 if role == VersionBlob.Role.ASSET else 1][name] = digest
    entries = []
    rows = PackageVersion.objects.order_by("package__name", "release_version").values_list(
        "id", "package__name", "version", "release_version", "metadata")
    for version_id, name, version, release_version, metadata in rows:
        try:
            assets, images = stored.get(version_id, ({}, {}))
            entries.append(package_entry(name, version, release_version, metadata, assets, images))
        except Exception:
            # One bad row must not take every cluster's package list down with it.
            logger.exception("/repo leaves out %s %s (release %s): its metadata cannot be served", name, version,
                             release_version)
    return entries


def _variant_package(entry: Entry, repo_version: str, escape: bool) -> bytes:
    config = entry.package.get("config")
    escapes = escape and isinstance(config, dict) and isinstance(config.get("properties"), dict)
    downgrades = repo_version == "v3" and entry.packaging_version == "4.0"
    if not (escapes or downgrades):
        return entry.encoded
    package = json.loads(entry.encoded)  # a deep copy, several times faster than copy.deepcopy
    if escapes:
        escape_properties(package["config"]["properties"])
    if downgrades:
        downgrade_to_v3(package)
    return encode(package)


def render(entries: list[Entry], repo_version: str, cutoff: tuple[int, ...] | None, escape: bool,
           visibility: Visibility = EVERYTHING) -> bytes:
    parts = []
    for entry in entries:
        if cutoff is not None and entry.min_dcos > cutoff:
            continue
        if not visibility.allows(entry.package["name"], entry.package["version"]):
            continue
        if entry.packaging_version not in CARRIES[repo_version]:
            continue
        try:
            parts.append(_variant_package(entry, repo_version, escape))
        except Exception:
            logger.exception("/repo leaves out %s %s from a %s repository", entry.package.get("name"),
                             entry.package.get("version"), repo_version)
    return b'{"packages":[' + b",".join(parts) + b"]}"
