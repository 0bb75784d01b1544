"""Publishes versions with their images straight into a registry, for bench/v2.py to time /v2 on them.

Run with the registry's environment (REGISTRY_DATA_DIR, DATABASE_URL), once it has been migrated; prints
the cluster token and the layer digest as JSON:

    .venv/bin/python bench/v2_load.py 10000
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
django.setup()

# Below: modules that need the app registry set up above.
from django.db import transaction  # noqa: E402

from access.audit import Actor  # noqa: E402
from access.models import Cluster  # noqa: E402
from access.tokens import create_token  # noqa: E402
from blobs.models import Blob  # noqa: E402
from blobs.store import blob_store  # noqa: E402
from packages_app.image_index import index_images, manifest_uses  # noqa: E402
from packages_app.models import Package, PackageVersion, VersionBlob  # noqa: E402

VERSIONS_PER_PACKAGE = 50
CLUSTER_PACKAGES = 20
BATCH = 500
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


def store_blobs(contents: list[bytes], media_type: str) -> list:
    store = blob_store()
    with ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(lambda content: store.put(io.BytesIO(content)), contents))
    Blob.objects.bulk_create([Blob(digest=info.digest, size=info.size, media_type=media_type) for info in stored],
                             ignore_conflicts=True)
    return [info.digest for info in stored]


def manifest_document(reference: str, config: tuple[str, int], layer: tuple[str, int]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer[0], "size": layer[1]}],
        "annotations": {"org.opencontainers.image.ref.name": reference},
    }, sort_keys=True).encode()


def load(count: int) -> dict:
    """Publish ``count`` versions, as the publish stage leaves them, and a cluster that sees some of them."""
    layer_content = hashlib.sha256(b"bench layer").digest() * 1024
    config_content = json.dumps({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    [layer] = store_blobs([layer_content], LAYER_MEDIA_TYPE)
    [config] = store_blobs([config_content], CONFIG_MEDIA_TYPE)
    for first in range(0, count, BATCH):
        numbers = range(first, min(count, first + BATCH))
        with transaction.atomic():
            packages = {}
            versions = []
            for number in numbers:
                name = f"bench-{number // VERSIONS_PER_PACKAGE}"
                if name not in packages:
                    packages[name] = Package.objects.create(name=name)
                package = packages[name]
                package.last_release_version += 1
                version = f"1.{number % VERSIONS_PER_PACKAGE}.0"
                versions.append(PackageVersion(
                    package=package, version=version, packaging_version="4.0",
                    release_version=package.last_release_version,
                    metadata={"name": name, "version": version, "packagingVersion": "4.0"},
                    bundle_digest="sha256:" + "0" * 64, content_digest="sha256:" + "0" * 64))
            Package.objects.bulk_update(packages.values(), ["last_release_version"])
            versions = PackageVersion.objects.bulk_create(versions)
            references = [f"bench/{version.package.name}:{version.version}" for version in versions]
            manifests = store_blobs([manifest_document(reference, (config, len(config_content)),
                                                       (layer, len(layer_content))) for reference in references],
                                    MANIFEST_MEDIA_TYPE)
            VersionBlob.objects.bulk_create([
                VersionBlob(version=version, blob_id=digest, role=role, name=reference)
                for version, reference, manifest in zip(versions, references, manifests)
                for digest, role in ((manifest, "manifest"), (config, "config"), (layer, "layer"))])
            index_images(manifest_uses(VersionBlob.objects.filter(version__in=versions)))
    cluster = Cluster.objects.create(name="bench", sees_all_packages=False)
    for number in range(CLUSTER_PACKAGES):
        cluster.rules.create(package_name=f"bench-{number}", versions="1.0.*")
    return {"token": create_token("bench cluster", "read", cluster, actor=Actor("user:bench"))[1], "layer": layer}


if __name__ == "__main__":
    print(json.dumps(load(int(sys.argv[1]))))
