"""Clusters: each has its own repository showing only what it may see, at its DC/OS version."""

from __future__ import annotations

import pytest

from access.clusters import Visibility
from access.models import Cluster
from tests.bundles import AssetSpec, make_bundle, package_metadata
from tests.packages_app.test_universe_repo import COSMOS_ACCEPT, ERROR_TYPE, packages_of, repo_validator, upload

pytestmark = pytest.mark.usefixtures("registry")


@pytest.fixture
def catalogue(client, tmp_path):
    """hello 1.0.0 and 2.0.0, and modern 1.0 which needs DC/OS 2.0."""
    for name, version, extra in [("hello", "1.0.0", {}), ("hello", "2.0.0", {}),
                                 ("modern", "1.0", {"minDcosReleaseVersion": "2.0"})]:
        assets = [AssetSpec("payload", "payload.tgz", 500, len(version))]
        metadata = {**package_metadata(name, version, assets, []), **extra}
        built = make_bundle(tmp_path / f"{name}-{version}", name=name, version=version, assets=assets, images=[],
                            metadata=metadata)
        assert upload(client, built.path)["state"] == "succeeded"


def cluster_repo(client, name, dcos=None):
    headers = {"HTTP_ACCEPT": COSMOS_ACCEPT}
    if dcos:
        headers["HTTP_USER_AGENT"] = f"cosmos/0.6.0 dcos/{dcos}"
    return client.get(f"/clusters/{name}/repo", **headers)


def create(client, **fields):
    return client.post("/api/v1/clusters/", data=fields, content_type="application/json")


def test_an_allow_listed_cluster_sees_only_its_packages_with_the_same_urls(client, catalogue):
    created = create(client, name="prod", sees_all_packages=False,
                     rules=[{"package_name": "hello", "versions": "1.*"}])
    assert created.status_code == 201, created.content
    assert created.json()["repo_url"] == "http://testserver/clusters/prod/repo"

    response = cluster_repo(client, "prod")
    assert response.status_code == 200
    repo_validator(response["Content-Type"]).validate(response.json())
    ours = packages_of(response)
    assert set(ours) == {("hello", "1.0.0")}
    full = packages_of(client.get("/repo", HTTP_ACCEPT=COSMOS_ACCEPT))
    assert set(full) == {("hello", "1.0.0"), ("hello", "2.0.0"), ("modern", "1.0")}
    # The cluster's entry is the full repository's, byte for byte: asset URLs stay valid.
    assert ours[("hello", "1.0.0")] == full[("hello", "1.0.0")]
    asset_url = ours[("hello", "1.0.0")]["resource"]["assets"]["uris"]["payload"]
    assert client.get(asset_url.removeprefix("http://127.0.0.1:8000")).status_code == 200


def test_a_rule_without_versions_allows_every_version_and_sees_all_shows_everything(client, catalogue):
    create(client, name="dev", sees_all_packages=False, rules=[{"package_name": "hello"}])
    assert set(packages_of(cluster_repo(client, "dev"))) == {("hello", "1.0.0"), ("hello", "2.0.0")}
    create(client, name="all")
    assert len(packages_of(cluster_repo(client, "all"))) == 3


def test_the_clusters_dcos_version_wins_over_what_cosmos_reports(client, catalogue):
    create(client, name="old", dcos_version="1.10")
    response = cluster_repo(client, "old", dcos="2.1")
    assert response["Content-Type"].endswith("version=v4")
    assert ("modern", "1.0") not in packages_of(response)
    # Without a configured version the cluster's Cosmos decides, as on /repo.
    create(client, name="follows")
    assert ("modern", "1.0") not in packages_of(cluster_repo(client, "follows", dcos="1.13"))
    assert ("modern", "1.0") in packages_of(cluster_repo(client, "follows", dcos="2.1"))


def test_changing_the_rules_changes_the_repository_at_once(client, catalogue):
    create(client, name="prod", sees_all_packages=False, rules=[{"package_name": "hello", "versions": "1.0.0"}])
    assert set(packages_of(cluster_repo(client, "prod"))) == {("hello", "1.0.0")}
    changed = client.patch("/api/v1/clusters/prod/", data={"rules": [
        {"package_name": "hello", "versions": "2.0.0"}, {"package_name": "modern"}]},
        content_type="application/json")
    assert changed.status_code == 200, changed.content
    assert [rule["package_name"] for rule in changed.json()["rules"]] == ["hello", "modern"]
    assert set(packages_of(cluster_repo(client, "prod"))) == {("hello", "2.0.0"), ("modern", "1.0")}


def test_an_unknown_cluster_is_a_404_in_cosmos_error_shape(client, catalogue):
    response = cluster_repo(client, "nowhere")
    assert response.status_code == 404 and response["Content-Type"] == ERROR_TYPE
    assert response.json()["type"] == "RepositoryNotFound" and "nowhere" in response.json()["message"]
    api = client.get("/api/v1/clusters/nowhere/")
    assert api.status_code == 404 and api.json()["code"] == "cluster_not_found"


@pytest.mark.parametrize("fields, field", [
    ({"name": "bad name"}, "name"),
    ({"name": "x", "dcos_version": "two"}, "dcos_version"),
    ({"name": "x", "rules": [{"package_name": "hello", "versions": "1.0 beta"}]}, "rules"),
    ({"name": "x", "rules": [{"package_name": "hello"}, {"package_name": "hello"}]}, "rules"),
])
def test_bad_clusters_are_refused_with_the_field_named(client, fields, field):
    response = create(client, **fields)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request" and field in body["details"] and field in body["message"]
    assert not Cluster.objects.exists()


def test_a_second_cluster_of_one_name_is_refused_and_a_removed_one_is_gone(client):
    assert create(client, name="prod").status_code == 201
    again = create(client, name="prod")
    assert again.status_code == 400 and "already exists" in again.json()["message"]
    assert client.delete("/api/v1/clusters/prod/").status_code == 204
    assert cluster_repo(client, "prod").status_code == 404
    assert client.get("/api/v1/clusters/").json()["results"] == []


def test_version_patterns_match_whole_versions():
    visibility = Visibility((("kafka", ("2.3.*", "2.4.0")), ("spark", ())))
    assert visibility.allows("kafka", "2.3.0-1.1.0") and visibility.allows("kafka", "2.4.0")
    assert not visibility.allows("kafka", "2.4.0-1") and not visibility.allows("kafka", "12.3.0")
    assert visibility.allows("spark", "anything") and not visibility.allows("hello", "1.0")
    assert Visibility().allows("hello", "1.0")


def test_clusters_are_managed_in_the_admin(admin_client, catalogue):
    response = admin_client.post("/admin/access/cluster/add/", data={
        "name": "edge", "description": "", "dcos_version": "2.2", "sees_all_packages": "",
        "rules-TOTAL_FORMS": "1", "rules-INITIAL_FORMS": "0", "rules-0-package_name": "hello",
        "rules-0-versions": "2.*",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert set(packages_of(cluster_repo(admin_client, "edge"))) == {("hello", "2.0.0")}
    listing = admin_client.get("/admin/access/cluster/").content.decode()
    assert "/clusters/edge/repo" in listing
    refused = admin_client.post("/admin/access/cluster/add/", data={
        "name": "bad", "dcos_version": "x.y", "rules-TOTAL_FORMS": "0", "rules-INITIAL_FORMS": "0"})
    assert refused.status_code == 200 and "is not a DC/OS version" in refused.content.decode()
