"""The catalogue REST API: search, details, the default version rule and its pin, removal; and the OpenAPI
schema."""

from __future__ import annotations

import pytest

from django.test import Client

from access.models import AuditEvent, Cluster
from access.tokens import create_token
from blobs.models import Blob
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from packages_app.catalogue import removal_plan
from packages_app.coordinates import package_coordinate
from packages_app.models import Package, PackageVersion
from packages_app.versions import highest, sorted_versions
from tests.actors import TEST_ACTOR
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
    # release_version is the publication number; /repo ranks the versions by the default rule instead.
    assert [version["release_version"] for version in package["versions"]] == [1, 0]
    assert package["pinned_version"] is None


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
    assert names("?framework=true") == names("?framework=YES") == ["kafka"]
    assert names("?framework=off") == ["nginx"]
    refused = client.get("/api/v1/packages/?framework=perhaps")
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_request")
    assert refused.json()["details"] == {"field": "framework", "value": "perhaps"}
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
    plan = removal_plan([PackageVersion.objects.get(version="1.0.0")])
    response = client.delete("/api/v1/packages/hello/versions/1.0.0/")
    assert response.status_code == 200
    garbage = response.json()["garbage_blobs"]
    assert first.manifest.assets[0].digest in garbage
    # What the admin's confirmation page announces is what the removal reports, in blobs and in bytes.
    assert garbage == sorted(use.blob.digest for use in plan.garbage)
    assert response.json()["garbage_bytes"] == plan.garbage_bytes == sum(
        Blob.objects.filter(digest__in=garbage).values_list("size", flat=True)) > 2000
    assert AuditEvent.objects.get(action="remove_version").details == {
        "garbage_blobs": len(garbage), "garbage_bytes": plan.garbage_bytes}
    # Garbage is deleted later by GC, never by the removal itself.
    assert all(registry.exists(digest) for digest in garbage)
    assert list(PackageVersion.objects.values_list("version", flat=True)) == ["2.0.0"]
    client.delete("/api/v1/packages/hello/versions/2.0.0/")
    assert client.get("/api/v1/packages/hello/").status_code == 404
    assert client.get("/api/v1/packages/").json()["count"] == 0
    # The package row keeps its release counter: a new upload continues the numbering.
    publish(client, tmp_path, version="3.0.0", seed=3)
    assert Package.objects.get().versions.get().release_version == 2


def pin(client, version, name="hello"):
    return client.put(f"/api/v1/packages/{name}/default-version/", {"version": version},
                      content_type="application/json")


def test_an_operator_pins_and_unpins_the_default_version(client, tmp_path):
    publish(client, tmp_path, version="2.0")
    publish(client, tmp_path, version="16.2", seed=2)
    url = "/api/v1/packages/hello/default-version/"
    assert client.get(url).json() == {"name": "hello", "url": "http://testserver/api/v1/packages/hello/",
                                      "default_version": "16.2", "pinned_version": None}
    pinned = pin(client, "2.0")
    assert pinned.status_code == 200
    assert (pinned.json()["default_version"], pinned.json()["pinned_version"]) == ("2.0", "2.0")
    listed = client.get("/api/v1/packages/").json()["results"][0]
    assert (listed["default_version"], listed["pinned_version"], listed["versions"]) == ("2.0", "2.0", ["2.0", "16.2"])
    detail = client.get("/api/v1/packages/hello/").json()
    assert (detail["default_version"], detail["description"]) == ("2.0", PackageVersion.objects.get(
        version="2.0").description)

    unpinned = client.delete(url)
    assert unpinned.status_code == 200
    assert (unpinned.json()["default_version"], unpinned.json()["pinned_version"]) == ("16.2", None)
    assert client.delete(url).status_code == 200  # nothing pinned: nothing to do, nothing audited
    events = AuditEvent.objects.filter(action=AuditEvent.Action.DEFAULT_VERSION).order_by("id")
    assert list(events.values_list("target", "details")) == [
        ("hello", {"version": "2.0", "previous": None}), ("hello", {"version": None, "previous": "2.0"})]
    assert {event.actor.split(" (")[0] for event in events} == {"token:test operator"}


def test_removing_the_pinned_version_unpins_it_and_others_keep_it(client, tmp_path):
    for seed, version in enumerate(["1.0", "2.0", "3.0"], 1):
        publish(client, tmp_path, version=version, seed=seed)
    pin(client, "2.0")
    client.delete("/api/v1/packages/hello/versions/1.0/")
    assert Package.objects.get().pinned_version == "2.0"
    client.delete("/api/v1/packages/hello/versions/2.0/")
    assert Package.objects.get().pinned_version == ""
    assert client.get("/api/v1/packages/hello/").json()["default_version"] == "3.0"


def test_bad_pins_are_refused_and_change_nothing(client, tmp_path):
    publish(client, tmp_path, version="1.0")
    publish(client, tmp_path, version="2.0", seed=2)
    refusals = [
        (pin(client, "1.0", name="nope"), 404, "package_not_found"),
        (pin(client, "9.9"), 404, "version_not_found"),
        (client.put("/api/v1/packages/hello/default-version/", {}, content_type="application/json"), 400,
         "invalid_request"),
        (pin(client, ""), 400, "invalid_request"),
        (client.put("/api/v1/packages/hello/default-version/", "1.0", content_type="text/plain"), 415,
         "unsupported_media_type"),
        (Client().put("/api/v1/packages/hello/default-version/", {"version": "1.0"},
                      content_type="application/json"), 401, "not_authenticated"),
        (pin(Client(headers={"Authorization": "Bearer " + create_token("r", "read", actor=TEST_ACTOR)[1]}), "1.0"), 403,
         "permission_denied"),
        (Client().delete("/api/v1/packages/hello/default-version/"), 401, "not_authenticated"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert "version" in refusals[2][0].json()["details"]
    assert Package.objects.get().pinned_version == ""
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DEFAULT_VERSION).exists()


def test_a_clusters_token_reads_the_default_version_of_what_it_sees_but_pins_nothing(client, tmp_path):
    for seed, version in enumerate(["1.0", "2.0", "3.0"], 1):
        publish(client, tmp_path, version=version, seed=seed)
    cluster = Cluster.objects.create(name="prod", sees_all_packages=False)
    cluster.rules.create(package_name="hello", versions="1.*,2.*")
    prod = Client(headers={"Authorization": "Bearer " + create_token("prod", "write", cluster, actor=TEST_ACTOR)[1]})
    pin(client, "3.0")
    # The pin is on a version the cluster does not see: for it there is none, and none to remove.
    assert prod.get("/api/v1/packages/hello/default-version/").json()["pinned_version"] is None
    assert prod.get("/api/v1/packages/hello/").json()["default_version"] == "2.0"
    # A package's default is every cluster's: its tokens neither pin nor unpin it.
    refused = prod.delete("/api/v1/packages/hello/default-version/")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert (pin(prod, "1.0").status_code, pin(prod, "1.0").json()["code"]) == (403, "permission_denied")
    assert Package.objects.get().pinned_version == "3.0"
    assert client.get("/api/v1/packages/hello/").json()["default_version"] == "3.0"


def test_openapi_schema_and_docs_page(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    body = schema.content.decode()
    for route in ("/api/v1/packages/", "/api/v1/packages/{name}/default-version/", "/api/v1/bundles/",
                  "/api/v1/uploads/", "/api/v1/jobs/"):
        assert route in body
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()
