"""A hand-made Docker image for tests: built here as a `docker save` archive, never pulled or built.

Its layers are real tars of random files, so every image made is new to the engine. The same
image can be written in both layouts `docker save` produces: the docker-archive of Docker 24 and
older, which `docker load` takes, and the OCI-style one of newer engines.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass

from dcos_bundle.format import IMAGES_DIR
from tests.services import service_missing
from tests.streams import sha256_digest


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 1_700_000_000
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


GREETING = b"hello from a hand-made image\n"


@dataclass(frozen=True)
class HandMadeImage:
    reference: str
    # The uncompressed layer tars, bottom first.
    layers: list[bytes]
    config: dict

    @property
    def diff_ids(self) -> list[str]:
        return [sha256_digest(layer) for layer in self.layers]

    @property
    def config_bytes(self) -> bytes:
        return json.dumps(self.config).encode()

    def docker_archive(self) -> bytes:
        """The docker-archive layout: a folder per layer (named by position here; `docker load` ignores it)."""
        config_name = hashlib.sha256(self.config_bytes).hexdigest() + ".json"
        layer_names = [f"layer{index}/layer.tar" for index in range(len(self.layers))]
        manifest = [{"Config": config_name, "RepoTags": [self.reference], "Layers": layer_names}]
        return tar_of(
            [
                *zip(layer_names, self.layers),
                (config_name, self.config_bytes),
                ("manifest.json", json.dumps(manifest).encode()),
            ]
        )

    def oci_style_archive(self, gzip_layers: bool = False) -> bytes:
        """The layout of Docker 25 and newer: blobs/sha256 first, then index.json and manifest.json.

        ``gzip_layers``: layer blobs compressed, as an engine with the containerd image store keeps them.
        """
        blobs = [gzip.compress(layer, mtime=0) if gzip_layers else layer for layer in self.layers]
        config_digest = sha256_digest(self.config_bytes)
        manifest_blob = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(self.config_bytes),
                },
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256_digest(blob), "size": len(blob)}
                    for blob in blobs
                ],
            }
        ).encode()
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha256_digest(manifest_blob),
                    "size": len(manifest_blob),
                    "annotations": {"org.opencontainers.image.ref.name": self.reference.rpartition(":")[2]},
                }
            ],
        }
        blob_members = {
            "blobs/sha256/" + sha256_digest(data).removeprefix("sha256:"): data
            for data in [*blobs, self.config_bytes, manifest_blob]
        }
        manifest = [
            {
                "Config": "blobs/sha256/" + config_digest.removeprefix("sha256:"),
                "RepoTags": [self.reference],
                "Layers": ["blobs/sha256/" + sha256_digest(blob).removeprefix("sha256:") for blob in blobs],
            }
        ]
        return tar_of(
            [
                *sorted(blob_members.items()),
                ("index.json", json.dumps(index).encode()),
                ("manifest.json", json.dumps(manifest).encode()),
                ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ]
        )


def hand_made_image(reference: str, repeat_first_layer: bool = False) -> HandMadeImage:
    """Two layers of random files, the first with a text file; ``repeat_first_layer`` puts it on top again."""
    layers = [
        tar_of([("etc/greeting.txt", GREETING), ("opt/data/a.bin", os.urandom(4096))]),
        tar_of([("opt/data/b.bin", os.urandom(64 * 1024)), ("opt/data/c.bin", os.urandom(100))]),
    ]
    if repeat_first_layer:
        layers.append(layers[0])
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/cat", "/etc/greeting.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer) for layer in layers]},
    }
    return HandMadeImage(reference, layers, config)


def load_image(client, reference: str, repeat_first_layer: bool = False):
    """`docker load` a new hand-made image, which the load tags as ``reference``; return the engine's image."""
    client.images.load(hand_made_image(reference, repeat_first_layer).docker_archive())
    return client.images.get(reference)


def skopeo_inspect(bundle_path, extract_dir, reference: str) -> tuple[bytes, dict]:
    """Extract a bundle's OCI layout and read one image back with skopeo: (raw manifest, inspect JSON)."""
    skopeo = shutil.which("skopeo")
    if not skopeo:
        service_missing("skopeo", "it is not installed (apt-get install skopeo)")
    with zipfile.ZipFile(bundle_path) as bundle:
        bundle.extractall(extract_dir, [name for name in bundle.namelist() if name.startswith(IMAGES_DIR)])
    # skopeo's oci transport splits at the first colon: the rest, tag and all, is the ref name.
    image = f"oci:{extract_dir / IMAGES_DIR}:{reference}"
    raw = subprocess.run([skopeo, "inspect", "--raw", image], capture_output=True, check=True).stdout
    inspected = json.loads(subprocess.run([skopeo, "inspect", image], capture_output=True, check=True).stdout)
    return raw, inspected
