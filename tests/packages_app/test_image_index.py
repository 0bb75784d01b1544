"""The index of published images that /v2 reads: written when a version is published, gone when it is replaced
or removed, rebuilt by a restore, and filled by its migration for versions published before it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from access.models import ApiToken
from blobs.models import Blob, StorageBackend
from blobs.store import blob_store
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest.models import IngestJob
from packages_app.catalogue import remove_versions
from packages_app.models import Package, PackageVersion, PublishedImage, VersionBlob
from tests.actors import TEST_ACTOR
from tests.bundles import ImageSpec, make_bundle

pytestmark = pytest.mark.usefixtures("registry")

BEFORE_THE_INDEX = ("packages_app", "0003_blobs_and_clusters_moved")
WITH_THE_INDEX = ("packages_app", "0004_published_images")


def publish(client, directory, name="hello", version="1.0.0", images=(), replace=False):
    built = make_bundle(Path(tempfile.mkdtemp(dir=directory)), name=name, version=version, assets=[],
                        images=list(images))
    response = client.post("/api/v1/bundles/" + ("?replace=true" if replace else ""), data=built.path.read_bytes(),
                           content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202, response.content
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    return built


def digests(built) -> dict[str, str]:
    return {image.reference: image.manifest_digest for image in built.manifest.images}


def index() -> set[tuple]:
    """Every row of the index: (package, version, reference, repository, tag, manifest digest)."""
    return set(PublishedImage.objects.values_list(
        "version__package__name", "version__version", "reference", "repository", "tag", "manifest_id"))


def test_publishing_indexes_every_image_under_the_repository_and_tag_it_is_pulled_as(client, tmp_path):
    pinned = "example/pinned@sha256:" + "ab" * 32
    built = publish(client, tmp_path, images=[
        ImageSpec("web", "nginx:1.25", [1000]),
        ImageSpec("app", "registry.example.com:5000/Team/App:2.0", [1000], seed=1),
        ImageSpec("bare", "example/bare", [1000], seed=2),
        ImageSpec("pinned", pinned, [1000], seed=3),
    ])
    manifest = digests(built)
    assert index() == {
        ("hello", "1.0.0", "nginx:1.25", "library/nginx", "1.25", manifest["nginx:1.25"]),
        ("hello", "1.0.0", "registry.example.com:5000/Team/App:2.0", "team/app", "2.0",
         manifest["registry.example.com:5000/Team/App:2.0"]),
        ("hello", "1.0.0", "example/bare", "example/bare", "latest", manifest["example/bare"]),
        # Pulled by the digest of the manifest it holds (its reference's digest is the one it had elsewhere).
        ("hello", "1.0.0", pinned, "example/pinned", "", manifest[pinned]),
    }
    # Publishing the same bundle again is a no-op, for the index too.
    publish(client, tmp_path, images=[
        ImageSpec("web", "nginx:1.25", [1000]),
        ImageSpec("app", "registry.example.com:5000/Team/App:2.0", [1000], seed=1),
        ImageSpec("bare", "example/bare", [1000], seed=2),
        ImageSpec("pinned", pinned, [1000], seed=3),
    ])
    assert PublishedImage.objects.count() == 4


def test_a_replaced_version_leaves_the_index_with_its_images(client, tmp_path):
    old = digests(publish(client, tmp_path, images=[ImageSpec("server", "example/hello:1", [1000], seed=1),
                                                    ImageSpec("side", "example/side:1", [1000], seed=2)]))
    new = digests(publish(client, tmp_path, images=[ImageSpec("server", "example/hello:1", [1000], seed=3)],
                          replace=True))
    assert old["example/hello:1"] != new["example/hello:1"]
    assert index() == {("hello", "1.0.0", "example/hello:1", "example/hello", "1", new["example/hello:1"])}
    assert client.get("/v2/example/hello/manifests/1")["Docker-Content-Digest"] == new["example/hello:1"]
    assert client.get(f"/v2/example/hello/manifests/{old['example/hello:1']}").status_code == 404
    assert client.get("/v2/example/side/tags/list").json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_removed_versions_leave_the_index_and_the_others_stay(client, tmp_path):
    shared = "example/shared:stable"
    first = digests(publish(client, tmp_path, version="1.0.0", images=[ImageSpec("s", shared, [1000], seed=1)]))
    publish(client, tmp_path, version="2.0.0", images=[ImageSpec("s", shared, [1000], seed=2)])
    publish(client, tmp_path, name="other", images=[ImageSpec("s", "example/other:1", [1000], seed=3)])

    assert client.delete("/api/v1/packages/hello/versions/2.0.0/").status_code == 200
    assert {row[:2] for row in index()} == {("hello", "1.0.0"), ("other", "1.0.0")}
    # The tag falls back to the version that still carries it.
    assert client.get("/v2/example/shared/manifests/stable")["Docker-Content-Digest"] == first[shared]

    remove_versions(PackageVersion.objects.all(), TEST_ACTOR)
    assert not PublishedImage.objects.exists()
    assert client.get("/v2/_catalog").json() == {"repositories": []}


def test_a_restore_writes_the_index_of_the_catalogue_it_restores(client, tmp_path, settings):
    publish(client, tmp_path, version="1.0.0", images=[ImageSpec("s", "example/hello:1", [1000], seed=1),
                                                       ImageSpec("w", "nginx:1.25", [1000], seed=2)])
    publish(client, tmp_path, name="world", images=[ImageSpec("s", "example/world@sha256:" + "cd" * 32, [1000],
                                                              seed=3)])
    backed_up = index()
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target))
    publish(client, tmp_path, name="later", images=[ImageSpec("s", "example/later:1", [1000], seed=4)])

    # --force replaces the catalogue: the index holds the restored versions' images, no others.
    call_command("restore", "--from", str(target), "--force")
    assert index() == backed_up

    # Into a new registry, from nothing.
    for model in (VersionBlob, PackageVersion, Package, IngestJob, Blob, StorageBackend, ApiToken):
        model.objects.all().delete()
    settings.STORAGE_URL = (tmp_path / "restored").as_uri()
    blob_store.cache_clear()
    call_command("restore", "--from", str(target))
    assert index() == backed_up
    manifest = client.get("/v2/library/nginx/manifests/1.25")
    assert manifest.status_code == 200
    assert ("hello", "1.0.0", "nginx:1.25", "library/nginx", "1.25", manifest["Docker-Content-Digest"]) in index()


@pytest.fixture
def migrations_undone_after():
    """Whatever a test migrates to, the database is at the newest migrations afterwards."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_indexes_the_versions_published_before_it(client, tmp_path, migrations_undone_after):
    publish(client, tmp_path, version="1.0.0", images=[ImageSpec("s", "example/hello:1", [1000], seed=1),
                                                       ImageSpec("w", "nginx:1.25", [1000], seed=2)])
    publish(client, tmp_path, version="2.0.0", images=[ImageSpec("s", "example/hello:1", [1000], seed=3),
                                                       ImageSpec("p", "example/hello@sha256:" + "ef" * 32, [1000],
                                                                 seed=4)])
    published = index()
    assert len(published) == 4

    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE_THE_INDEX])
    assert "packages_app_publishedimage" not in connection.introspection.table_names()
    executor.loader.build_graph()
    executor.migrate([WITH_THE_INDEX])
    assert index() == published
