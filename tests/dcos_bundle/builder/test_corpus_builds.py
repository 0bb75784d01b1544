"""Every Universe revision of the corpus migrates and builds into a bundle that streams back verified.

Assets come from the local asset server through ``--asset-mirror`` (one mirror per origin);
the corpus's images cannot be pulled here, so one hand-made image is tagged in the real engine
under every reference the packages name, and the build exports each of them.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import jsonschema
import pytest

from dcos_bundle.builder.build import build_bundle
from dcos_bundle.reader import BundleReader
from dcos_bundle.universe.migrate import load_build_definition, migrate_package
from dcos_bundle.universe.resource import asset_urls, image_references
from tests.asset_server import digest_for
from tests.corpus import package_dirs, revision_id, schema
from tests.images import load_image

pytestmark = pytest.mark.docker

REVISIONS = package_dirs()


@pytest.fixture(scope="module")
def corpus_images(docker_client):
    """The hand-made image, tagged as every image the corpus references."""
    image = load_image(docker_client, "registry-test/corpus:1")
    references = set()
    for revision in REVISIONS:
        resource = json.loads((revision / "resource.json").read_text())
        references.update(resource.get("assets", {}).get("container", {}).get("docker", {}).values())
    for reference in references:
        repository, _, tag = reference.rpartition(":") if ":" in reference.split("/")[-1] else (reference, "", "latest")
        image.tag(repository, tag)
    return image


@pytest.fixture(scope="module")
def metadata_validator():
    return jsonschema.Draft4Validator(schema("metadata-schema.json"))


@pytest.mark.parametrize("revision", REVISIONS, ids=revision_id)
def test_revision_builds_into_a_verified_bundle(revision, tmp_path, asset_server, corpus_images, metadata_validator):
    definition = migrate_package(revision, tmp_path / "definitions")
    metadata = load_build_definition(definition)
    urls = asset_urls(metadata)
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in urls}
    # The stand-in content cannot match the CLI binaries' published hashes: the build records
    # the served content's hash instead (checked below), which is what the option is for.
    result = build_bundle(
        definition, tmp_path / "bundles", mirrors=[asset_server.mirror_for(origin) for origin in origins],
        accept_changed_content_hashes=True,
    )

    with BundleReader(result.path) as reader:
        bundled = reader.metadata()
        manifest = reader.manifest()
        summary = reader.verify()
        exported = {reference for reference, _, _ in reader.image_blobs()}
    assert [error.message for error in metadata_validator.iter_errors(bundled)] == []
    assert bundled["resource"].get("assets") == metadata["resource"].get("assets")
    assert {asset.url for asset in manifest.assets} == set(urls)
    for asset in manifest.assets:
        split = urlsplit(asset.url)
        served_path = f"/{split.netloc}{split.path}" + (f"?{split.query}" if split.query else "")
        assert asset.digest == digest_for(served_path), asset.url
    assert exported == set(image_references(metadata))
    assert {image.reference for image in manifest.images} == exported
    assert summary["images"] == len(exported)
