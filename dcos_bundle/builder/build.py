"""Build a `.dcos` bundle from a build definition: metadata, downloaded assets, exported images."""

from __future__ import annotations

import getpass
import os
import platform
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from dcos_bundle.digests import hash_file
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import (
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    ImageEntry,
    Manifest,
    asset_member,
    bundle_file_name,
)
from dcos_bundle.oci import ImageSet
from dcos_bundle.universe.metadata import check_metadata
from dcos_bundle.universe.migrate import load_build_definition
from dcos_bundle.universe.resource import asset_urls, image_references, kept_values
from dcos_bundle.version import installed_version
from dcos_bundle.writer import BundleExists, BundleWriter

from .assets import check_cli_content_hashes, download, mirrored
from .images import docker_client, export_image
from .progress import BuildProgress

TOOL_NAME = "dcos-registry"


def build_time() -> str:
    """``builtAt``: SOURCE_DATE_EPOCH when set (https://reproducible-builds.org/specs/source-date-epoch/), so that
    builds of the same inputs give the same bytes; else the time of this build."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not epoch:
        moment = datetime.now(timezone.utc)
    elif epoch.isascii() and epoch.isdigit():
        moment = datetime.fromtimestamp(int(epoch), timezone.utc)
    else:
        raise RegistryError(ErrorCode.INVALID_SOURCE_DATE_EPOCH, f"SOURCE_DATE_EPOCH must be a whole number of seconds "
                            f"since 1970-01-01 UTC, not {epoch!r}.", value=epoch)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def builder_names(record_host_and_user: bool) -> dict:
    """``builtBy``: the tool, and only when asked this machine's and user's names, which differ from one build to
    the next where the bytes should not."""
    built_by = {"tool": TOOL_NAME, "version": installed_version()}
    if record_host_and_user:
        built_by["host"] = platform.node()
        try:
            built_by["user"] = getpass.getuser()
        except (KeyError, OSError):
            pass  # no name for this user id (a container without a passwd entry)
    return built_by


@dataclass
class BuildResult:
    path: Path
    name: str
    version: str
    size: int
    sha256: str
    assets: int
    images: int
    changed_content_hashes: list[str] = field(default_factory=list)
    # Places in the resource holding no downloadable URL (pointer -> value): in the bundle as they were.
    kept_values: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "bundle": str(self.path),
            "name": self.name,
            "version": self.version,
            "size": self.size,
            "sha256": self.sha256,
            "assets": self.assets,
            "images": self.images,
            "changedContentHashes": self.changed_content_hashes,
            "keptValues": self.kept_values,
        }


def build_bundle(
    definition_file: str | Path,
    output_directory: str | Path,
    *,
    mirrors: list[tuple[str, str]] = (),
    accept_changed_content_hashes: bool = False,
    record_builder: bool = False,
    docker_client_factory: Callable | None = None,
    progress: BuildProgress | None = None,
) -> BuildResult:
    progress = progress or BuildProgress(enabled=False)
    built_at = build_time()
    metadata = load_build_definition(definition_file)
    check_metadata(metadata)
    output_directory = Path(output_directory)
    output_directory.mkdir(parents=True, exist_ok=True)
    target = output_directory / bundle_file_name(metadata["name"], metadata["version"])
    if target.exists():
        # Before any download: a bundle that is there already is never rebuilt over.
        raise BundleExists(target)

    with tempfile.TemporaryDirectory(dir=output_directory, prefix=".build-") as work_dir:
        work = Path(work_dir)
        downloaded = []
        for url, used_at in asset_urls(metadata).items():
            with progress.bar() as bar:
                downloaded.append(download(url, mirrored(url, list(mirrors)), used_at, work, bar.start, bar.advance))
        changed = check_cli_content_hashes(
            metadata, {asset.entry.url: asset.entry.digest for asset in downloaded}, accept_changed_content_hashes
        )

        images = ImageSet()
        image_entries = []
        references = image_references(metadata)
        if references:
            client = (docker_client_factory or docker_client)()
            for reference, used_at in references.items():
                with progress.bar() as bar:
                    bar.start(reference, None)
                    config, layers = export_image(client, reference, work, on_bytes=bar.advance)
                manifest_digest = images.add_image(reference, config, layers)
                image_entries.append(ImageEntry(reference, manifest_digest, tuple(used_at)))

        manifest = Manifest(
            name=metadata["name"],
            version=metadata["version"],
            built_by=builder_names(record_builder),
            built_at=built_at,
            assets=[asset.entry for asset in downloaded],
            images=image_entries,
        )
        with BundleWriter(target) as writer:
            writer.write_json(METADATA_MEMBER, metadata)
            writer.write_json(MANIFEST_MEMBER, manifest.to_json())
            written = set()
            for asset in downloaded:
                if asset.entry.digest not in written:
                    written.add(asset.entry.digest)
                    writer.write_file(asset_member(asset.entry.digest), asset.path)
            images.write_into(writer)
            writer.commit()

    # The ZIP writer seeks back to finish each member's header, so the bundle is hashed once written.
    sha256, size = hash_file(target)
    return BuildResult(
        target, metadata["name"], metadata["version"], size, sha256, len(downloaded), len(image_entries), changed,
        kept_values(metadata),
    )
