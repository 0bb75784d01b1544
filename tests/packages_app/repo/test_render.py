"""One version as /repo serves it: every URL and image it stored points at this registry."""

from packages_app.coordinates import registry_host, resource_url
from packages_app.repo.render import package_entry

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
    entry = package_entry("demo", "2.0", 7, metadata, assets, images)
    resource = entry.package["resource"]
    assert resource["images"]["icon-small"] == resource_url("demo", "2.0", "sha256:" + "1" * 64, "small.png")
    assert resource["images"]["screenshots"] == [resource_url("demo", "2.0", "sha256:" + "2" * 64, "shot.png"),
                                                 "https://x.invalid/not-stored.png"]
    jar = resource_url("demo", "2.0", "sha256:" + "3" * 64, "demo.jar")
    assert resource["assets"]["uris"]["jar"] == resource["cli"]["binaries"]["linux"]["x86-64"]["url"] == jar
    assert resource["assets"]["container"]["docker"] == {"main": f"{registry_host()}/team/demo@sha256:{'4' * 64}",
                                                         "side": "busybox"}
    assert entry.package["releaseVersion"] == 7 and entry.min_dcos == (1, 10)
    assert metadata["resource"]["images"]["icon-small"] == "https://x.invalid/icons/small.png", "stored row changed"
