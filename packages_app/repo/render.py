"""The repository JSON: each published version as /repo serves it, and a whole repository for one client.

``releaseVersion`` is what Cosmos orders a package's versions by: it installs the highest when no
version is asked for. So it is not the publication number but each version's rank among the versions
the client's cluster sees, in the default version's order (``versions.release_order``: by version,
the pinned version last). It is given when a repository is rendered, so a cluster's filter cannot leave
a hole at the top, and it is the same on every request while the catalogue does not change.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import defaultdict
from dataclasses import dataclass

from access.clusters import EVERYTHING, Visibility
from dcos_bundle.universe.metadata import REPOSITORY_FIELDS
from dcos_bundle.universe.resource import asset_urls, file_name_of, image_references
from packages_app.coordinates import registry_host, resource_url, split_reference
from packages_app.models import Package, PackageVersion, VersionBlob
from packages_app.versions import release_order

from .dcos_rules import CARRIES, downgrade_to_v3, escape_properties, release_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    min_dcos: tuple[int, ...]
    packaging_version: str
    package: dict  # the metadata, URLs rewritten; without releaseVersion, which each rendering gives
    encoded: bytes  # the same as JSON: most variants reuse it as it is


def encode(document) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _replace_at(document, pointer: str, value) -> None:
    """Set the value an RFC 6901 pointer names (the pointers asset_urls and image_references give)."""
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    for part in parents:
        document = document[int(part) if isinstance(document, list) else part]
    document[int(last) if isinstance(document, list) else last] = value


def package_entry(name: str, version: str, metadata: dict, assets: dict[str, str], images: dict[str, str]) -> Entry:
    """One version as /repo serves it; ``assets`` maps stored URLs, ``images`` stored references, to digests."""
    # What the repository assigns is ours to give, never the stored metadata's (uploads refuse it anyway).
    package = {key: value for key, value in metadata.items() if key not in REPOSITORY_FIELDS}
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
    return Entry(name, version, min_dcos, packaging_version, package, encode(package))


def with_release_version(encoded: bytes, release_version: int) -> bytes:
    """A package's JSON (an object with at least packagingVersion) with its releaseVersion added last."""
    return encoded[:-1] + b',"releaseVersion":%d}' % release_version


def load_entries() -> list[Entry]:
    """Every published version, ready to serve, each package's in release order: three queries whatever the
    catalogue's size."""
    stored: dict[int, tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
    links = VersionBlob.objects.filter(role__in=[VersionBlob.Role.ASSET, VersionBlob.Role.MANIFEST])
    for version_id, role, name, digest in links.values_list("version_id", "role", "name", "blob_id"):
        stored[version_id][0 if role == VersionBlob.Role.ASSET else 1][name] = digest
    pins = dict(Package.objects.exclude(pinned_version="").values_list("name", "pinned_version"))
    loaded: dict[str, dict[str, Entry]] = defaultdict(dict)
    rows = PackageVersion.objects.order_by("package__name", "release_version").values_list(
        "id", "package__name", "version", "metadata")
    for version_id, name, version, metadata in rows:
        try:
            assets, images = stored.get(version_id, ({}, {}))
            loaded[name][version] = package_entry(name, version, metadata, assets, images)
        except Exception:
            # One bad row must not take every cluster's package list down with it.
            logger.exception("/repo leaves out %s %s: its metadata cannot be served", name, version)
    return [versions[version] for name, versions in loaded.items()
            for version in release_order(versions, pins.get(name, ""))]


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
    """The repository for one client; ``entries`` as ``load_entries`` gives them (each package's in release order)."""
    parts = []
    ranks: dict[str, int] = {}
    for entry in entries:
        if not visibility.allows(entry.name, entry.version):
            continue
        # Ranked before the DC/OS version's filters: what they leave of a package keeps the same order.
        release_version = ranks[entry.name] = ranks.get(entry.name, -1) + 1
        if cutoff is not None and entry.min_dcos > cutoff:
            continue
        if entry.packaging_version not in CARRIES[repo_version]:
            continue
        try:
            parts.append(with_release_version(_variant_package(entry, repo_version, escape), release_version))
        except Exception:
            logger.exception("/repo leaves out %s %s from a %s repository", entry.name, entry.version, repo_version)
    return b'{"packages":[' + b",".join(parts) + b"]}"
