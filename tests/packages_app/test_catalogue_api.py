"""The catalogue REST API: search, details, the default version rule, removal; and the OpenAPI schema."""

from __future__ import annotations

import pytest

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from packages_app.coordinates import package_coordinate
from packages_app.models import Package, PackageVersion
from packages_app.versions import highest, sorted_versions
from tests.bundles import AssetSpec, ImageSpec, make_bundle, package_metadata

pytestmark = pytest.mark.usefixtures("registry")


def publish(client, tmp_path, name="hello", version="1.0.0", seed=1, **fields):
    assets = [AssetSpec("payload", f"{name}-{version}.tgz", 2000, seed)]
    images = [ImageSpec("server", f"example/{name}:{version}", [5000], seed=seed)]
    metadata = {**package_metadata(name, version, assets, images), **fields}
    built = make_bundle(tmp_path / f"{name}-{version}", name=name, version=version, assets=assets, images=images,
                        metadata=metadata)
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    return built


def test_version_ordering_rule():
    assert sorted_versions(["1.10", "1.9", "2.3.0-1.1.0", "2.3.0", "1.0.0-beta", "1.0.0", "1.0.0-rc1"]) == [
        "1.0.0-beta", "1.0.0-rc1", "1.0.0", "1.9", "1.10", "2.3.0", "2.3.0-1.1.0"]
    assert highest(["0.9.9", "0.10.0"]) == "0.10.0"


def test_default_version_is_the_highest_not_the_latest_upload(client, tmp_path):
    publish(client, tmp_path, version="1.10.0")
    publish(client, tmp_path, version="1.9.0", seed=2)
    package = client.get("/api/v1/packages/hello/").json()
    assert package["default_version"] == "1.10.0"
    assert [version["version"] for version in package["versions"]] == ["1.9.0", "1.10.0"]
    assert [version["release_version"] for version in package["versions"]] == [1, 0]


def test_search_and_filters(client, tmp_path):
    publish(client, tmp_path, name="kafka", tags=["messaging", "streams"], description="A distributed log.",
            framework=True)
    publish(client, tmp_path, name="nginx", tags=["web"], description="A web server.")

    def names(query):
        response = client.get(f"/api/v1/packages/{query}")
        assert response.status_code == 200
        return [package["name"] for package in response.json()["results"]]

    assert names("") == ["kafka", "nginx"]
    assert names("?search=distributed") == ["kafka"]
    assert names("?search=ngin") == ["nginx"]
    assert names("?tag=web") == ["nginx"]
    assert names("?tag=we") == []
    assert names("?framework=true") == ["kafka"]
    assert names("?packaging_version=4.0&ordering=-name") == ["nginx", "kafka"]
    listed = client.get("/api/v1/packages/?search=kafka").json()
    assert listed["count"] == 1
    assert listed["results"][0]["tags"] == ["messaging", "streams"]


def test_version_detail_lists_assets_images_and_the_upload_job(client, tmp_path, settings):
    built = publish(client, tmp_path)
    detail = client.get("/api/v1/packages/hello/versions/1.0.0/").json()
    asset = built.manifest.assets[0]
    assert detail["assets"] == [{
        "url": asset.url, "digest": asset.digest, "size": asset.size, "file_name": "hello-1.0.0.tgz",
        "download_url": f"{settings.PUBLIC_BASE_URL}/resource/{package_coordinate('hello', '1.0.0')}/"
                        f"{asset.digest}/hello-1.0.0.tgz",
    }]
    [image] = detail["images"]
    assert image["reference"] == "example/hello:1.0.0"
    assert image["pull_reference"] == f"127.0.0.1:8000/example/hello@{image['manifest_digest']}"
    assert {blob["role"] for blob in image["blobs"]} == {"manifest", "config", "layer"}
    assert detail["stored_bytes"] == sum(blob["size"] for blob in image["blobs"]) + asset.size
    assert detail["upgrades_from"] == ["*"] and detail["metadata"] == built.metadata
    assert detail["upload_job"]["id"]


def test_unknown_package_and_version_answer_like_cosmos(client, tmp_path):
    publish(client, tmp_path)
    missing_package = client.get("/api/v1/packages/nope/")
    assert missing_package.status_code == 404
    assert missing_package.json() == {"code": "package_not_found", "message": "Package [nope] not found",
                                      "details": {"package": "nope"}}
    missing_version = client.get("/api/v1/packages/hello/versions/9/").json()
    assert missing_version["code"] == "version_not_found"
    assert missing_version["message"] == "Version [9] of package [hello] not found"


def test_removing_a_version_leaves_shared_blobs_referenced(client, tmp_path, registry):
    first = publish(client, tmp_path, version="1.0.0")
    publish(client, tmp_path, version="2.0.0", seed=2)
    response = client.delete("/api/v1/packages/hello/versions/1.0.0/")
    assert response.status_code == 200
    garbage = response.json()["garbage_blobs"]
    assert first.manifest.assets[0].digest in garbage
    # Garbage is deleted later by GC, never by the removal itself.
    assert all(registry.exists(digest) for digest in garbage)
    assert list(PackageVersion.objects.values_list("version", flat=True)) == ["2.0.0"]
    client.delete("/api/v1/packages/hello/versions/2.0.0/")
    assert client.get("/api/v1/packages/hello/").status_code == 404
    assert client.get("/api/v1/packages/").json()["count"] == 0
    # The package row keeps its release counter: a new upload continues the numbering.
    publish(client, tmp_path, version="3.0.0", seed=3)
    assert Package.objects.get().versions.get().release_version == 2


def test_openapi_schema_and_docs_page(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    body = schema.content.decode()
    for route in ("/api/v1/packages/", "/api/v1/bundles/", "/api/v1/uploads/", "/api/v1/jobs/"):
        assert route in body
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()
