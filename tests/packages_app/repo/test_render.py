"""One version as /repo serves it: every URL and image it stored points at this registry; and releaseVersions
as each rendering gives them."""

import json

from access.clusters import Visibility
from packages_app.coordinates import registry_host, resource_url
from packages_app.repo.render import Entry, package_entry, render


def test_every_kind_of_asset_url_is_rewritten_and_only_stored_ones():
    metadata = {
        "packagingVersion": "3.0", "name": "demo", "version": "2.0", "maintainer": "m", "description": "d",
        "tags": [], "minDcosReleaseVersion": "1.10",
        "resource": {
            "images": {"icon-small": "https://x.invalid/icons/small.png",
                       "screenshots": ["https://x.invalid/shot.png", "https://x.invalid/not-stored.png"]},
            "assets": {"uris": {"jar": "https://x.invalid/a/demo.jar"},
                       "container": {"docker": {"main": "registry.example:5000/team/demo:2.0", "side": "busybox"}}},
            "cli": {"binaries": {"linux": {"x86-64": {"kind": "executable", "url": "https://x.invalid/a/demo.jar",
                                                      "contentHash": []}}}},
        },
    }
    assets = {"https://x.invalid/icons/small.png": "sha256:" + "1" * 64,
              "https://x.invalid/shot.png": "sha256:" + "2" * 64,
              "https://x.invalid/a/demo.jar": "sha256:" + "3" * 64}
    images = {"registry.example:5000/team/demo:2.0": "sha256:" + "4" * 64}
    entry = package_entry("demo", "2.0", metadata, assets, images)
    resource = entry.package["resource"]
    assert resource["images"]["icon-small"] == resource_url("demo", "2.0", "sha256:" + "1" * 64, "small.png")
    assert resource["images"]["screenshots"] == [resource_url("demo", "2.0", "sha256:" + "2" * 64, "shot.png"),
                                                 "https://x.invalid/not-stored.png"]
    jar = resource_url("demo", "2.0", "sha256:" + "3" * 64, "demo.jar")
    assert resource["assets"]["uris"]["jar"] == resource["cli"]["binaries"]["linux"]["x86-64"]["url"] == jar
    assert resource["assets"]["container"]["docker"] == {"main": f"{registry_host()}/team/demo@sha256:{'4' * 64}",
                                                         "side": "busybox"}
    # A rendering gives the releaseVersion: it depends on what the client's cluster sees.
    assert "releaseVersion" not in entry.package and entry.min_dcos == (1, 10)
    assert metadata["resource"]["images"]["icon-small"] == "https://x.invalid/icons/small.png", "stored row changed"


def entry(name: str, version: str, min_dcos: str = "0.0") -> Entry:
    metadata = {"packagingVersion": "4.0", "name": name, "version": version, "maintainer": "m",
                "description": "d", "tags": [], "minDcosReleaseVersion": min_dcos}
    return package_entry(name, version, metadata, {}, {})


def release_versions(body: bytes) -> dict[tuple[str, str], int]:
    return {(package["name"], package["version"]): package["releaseVersion"]
            for package in json.loads(body)["packages"]}


def test_release_versions_rank_what_the_cluster_sees_before_the_dcos_version_filters():
    # As load_entries gives them: each package's versions in release order.
    entries = [entry("a", "1.0"), entry("a", "1.1", "1.12"), entry("a", "2.0"), entry("b", "0.1")]
    assert release_versions(render(entries, "v5", None, False)) == {
        ("a", "1.0"): 0, ("a", "1.1"): 1, ("a", "2.0"): 2, ("b", "0.1"): 0}
    # A cluster that does not see 1.0: no hole at the bottom, 2.0 still on top.
    no_first = Visibility((("a", ("1.1", "2.0")), ("b", ())))
    assert release_versions(render(entries, "v5", None, False, no_first)) == {
        ("a", "1.1"): 0, ("a", "2.0"): 1, ("b", "0.1"): 0}
    # An older DC/OS leaves out 1.1; the others keep their numbers, so the same order.
    assert release_versions(render(entries, "v4", (1, 11), False)) == {
        ("a", "1.0"): 0, ("a", "2.0"): 2, ("b", "0.1"): 0}


def test_stored_repository_fields_never_reach_the_repository():
    stored = entry("a", "1.0").package | {"releaseVersion": 99, "selected": True}
    [package] = json.loads(render([package_entry("a", "1.0", stored, {}, {})], "v5", None, False))["packages"]
    assert package["releaseVersion"] == 0 and "selected" not in package
