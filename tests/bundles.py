"""Real bundles built in Python, of any size, never held in memory.

Layers are real tar streams of pseudo-random files, gzip-compressed with correct digests and
diff_ids; configs and manifests are real OCI documents; assets are files of given sizes. Used by
the bundle-format tests, the ingest pipeline tests, the hostile-input corpus and the benchmarks.
"""

from __future__ import annotations

import base64
import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from dcos_bundle.format import (
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    AssetEntry,
    ImageEntry,
    Manifest,
    asset_member,
    bundle_file_name,
    json_pointer,
)
from dcos_bundle.oci import ImageSet, SpooledLayer, spool_layer
from dcos_bundle.streams import IterableReader
from dcos_bundle.writer import BundleWriter
from tests.streams import PatternStream, pattern_digest

TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK

TEMPLATE = """{
  "id": "{{service.name}}",
  "cpus": {{service.cpus}},
  "mem": {{service.mem}},
  "instances": 1,
  "container": {"type": "DOCKER", "docker": {"image": "{{resource.assets.container.docker.server}}"}},
  "fetch": [{"uri": "{{resource.assets.uris.payload}}"}]
}
"""

CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "service": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "hello"},
                "cpus": {"type": "number", "default": 0.5},
                "mem": {"type": "integer", "default": 256},
            },
        }
    },
}


def tar_stream(files: list[tuple[str, int, int]]) -> io.BufferedReader:
    """A tar archive of pseudo-random files, produced as it is read.

    ``files`` is a list of (name, size, seed). The result is byte-identical to what tarfile
    writes for the same members, so any tar reader accepts it.
    """
    return io.BufferedReader(IterableReader(_tar_chunks(files)))


def _tar_chunks(files):
    written = 0
    for name, size, seed in files:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        header = info.tobuf(format=tarfile.PAX_FORMAT)
        yield header
        content = PatternStream(size, seed)
        while chunk := content.read(PatternStream.BLOCK):
            yield chunk
        padding = (-size) % TAR_BLOCK
        yield b"\0" * padding
        written += len(header) + size + padding
    end = 2 * TAR_BLOCK
    written += end
    yield b"\0" * (end + (-written) % TAR_RECORD)


def make_layer(work_dir: Path, size: int, seed: int, files: int = 2) -> SpooledLayer:
    """A gzip layer of ``files`` pseudo-random files totalling about ``size`` bytes."""
    sizes = [size // files + (1 if n < size % files else 0) for n in range(files)]
    members = [(f"data/file-{seed}-{n}.bin", part, seed * 1000 + n) for n, part in enumerate(sizes)]
    return spool_layer(tar_stream(members), work_dir)


def image_config(layers: list[SpooledLayer], command: list[str] | None = None) -> dict:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": command or ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": "tests.bundles"} for _ in layers],
    }


@dataclass
class AssetSpec:
    key: str
    file_name: str
    size: int
    seed: int

    @property
    def url(self) -> str:
        # Never fetched: the bundle carries the file.
        return f"https://downloads.example.invalid/{self.file_name}"


@dataclass
class ImageSpec:
    key: str
    reference: str
    layer_sizes: list[int]
    seed: int = 0


@dataclass
class BuiltBundle:
    path: Path
    metadata: dict
    manifest: Manifest
    layers: dict[str, list[SpooledLayer]] = field(default_factory=dict)


def package_metadata(name: str, version: str, assets: list[AssetSpec], images: list[ImageSpec]) -> dict:
    """Valid packagingVersion 4.0 metadata whose resource names the given assets and images."""
    return {
        "packagingVersion": "4.0",
        "name": name,
        "version": version,
        "maintainer": "registry@example.invalid",
        "description": f"The {name} test package.",
        "tags": ["test"],
        "framework": False,
        "upgradesFrom": ["*"],
        "downgradesTo": ["*"],
        "minDcosReleaseVersion": "1.10",
        "config": CONFIG_SCHEMA,
        "resource": {
            "assets": {
                "uris": {asset.key: asset.url for asset in assets},
                "container": {"docker": {image.key: image.reference for image in images}},
            }
        },
        "marathon": {"v2AppMustacheTemplate": base64.b64encode(TEMPLATE.encode()).decode()},
    }


def make_bundle(
    directory: Path,
    name: str = "hello",
    version: str = "1.0.0",
    assets: list[AssetSpec] | None = None,
    images: list[ImageSpec] | None = None,
    metadata: dict | None = None,
) -> BuiltBundle:
    """Write ``<name>-<version>.dcos`` in ``directory``; defaults give a small complete bundle."""
    assets = [AssetSpec("payload", "payload.tgz", 64 * 1024, 1)] if assets is None else assets
    images = [ImageSpec("server", "example/hello:1.0.0", [256 * 1024, 32 * 1024])] if images is None else images
    metadata = metadata or package_metadata(name, version, assets, images)
    work_dir = directory / f".work-{name}-{version}"
    work_dir.mkdir(parents=True, exist_ok=True)
    image_set, image_entries, layers_by_reference = ImageSet(), [], {}
    for number, image in enumerate(images):
        layers = [
            make_layer(work_dir, size, seed=image.seed * 100 + number * 10 + index)
            for index, size in enumerate(image.layer_sizes)
        ]
        digest = image_set.add_image(image.reference, image_config(layers), layers)
        image_entries.append(ImageEntry(image.reference, digest, (json_pointer("resource", "assets", "container", "docker", image.key),)))
        layers_by_reference[image.reference] = layers
    asset_entries = [
        AssetEntry(asset.url, pattern_digest(asset.size, asset.seed), asset.size, asset.file_name,
                   (json_pointer("resource", "assets", "uris", asset.key),))
        for asset in assets
    ]
    manifest = Manifest(
        name=name, version=version, built_by={"tool": "tests.bundles"}, built_at="2026-01-01T00:00:00Z",
        assets=asset_entries, images=image_entries,
    )
    with BundleWriter(directory / bundle_file_name(name, version)) as writer:
        writer.write_json(METADATA_MEMBER, metadata)
        writer.write_json(MANIFEST_MEMBER, manifest.to_json())
        for asset, entry in zip(assets, asset_entries):
            writer.write_stream(asset_member(entry.digest), io.BufferedReader(PatternStream(asset.size, asset.seed)),
                                size=asset.size)
        image_set.write_into(writer)
        path = writer.commit()
    for layers in layers_by_reference.values():
        for layer in layers:
            layer.path.unlink(missing_ok=True)
    work_dir.rmdir()
    return BuiltBundle(path, metadata, manifest, layers_by_reference)
