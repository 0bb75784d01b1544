"""releaseVersion makes Cosmos install the registry's default version: in every repository (/repo, each
cluster's, each DC/OS version) a package's versions are ranked as the registry ranks them, whatever the order
of uploads, replaces, removals and pins."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from django.test import Client

from access.clusters import visibility_of
from access.models import AuditEvent, Cluster
from access.tokens import create_token
from dcos_bundle.universe.migrate import metadata_from_package_directory
from tests.actors import TEST_ACTOR
from tests.corpus import package_dirs
from tests.packages_app.test_universe_repo import (COSMOS_ACCEPT, DCOS_VERSIONS, differences, expected_repo,
                                                   metadata_only_bundle, packages_of, registry_order,
                                                   release_order_problems, upload)

pytestmark = pytest.mark.usefixtures("registry")


def revisions(*names: str) -> dict[tuple[str, int], dict]:
    """The corpus revisions of these packages, by (name, revision): their metadata."""
    return {(path.parent.name, int(path.name)): metadata_from_package_directory(path)
            for path in package_dirs() if path.parent.name in names}


def repo(client, path: str = "/repo", dcos: str | None = None) -> dict[tuple[str, str], dict]:
    headers = {"HTTP_ACCEPT": COSMOS_ACCEPT}
    if dcos is not None:
        headers["HTTP_USER_AGENT"] = f"cosmos/0.6.0 dcos/{dcos}"
    response = client.get(path, **headers)
    assert response.status_code == 200, response.content
    return packages_of(response)


def cosmos_pick(served: dict[tuple[str, str], dict], name: str) -> str:
    """What Cosmos installs when no version is given: the entry with the highest releaseVersion."""
    return max((package for (each, _), package in served.items() if each == name),
               key=lambda package: package["releaseVersion"])["version"]


def pin(client, name: str, version: str):
    return client.put(f"/api/v1/packages/{name}/default-version/", {"version": version},
                      content_type="application/json")


def test_cosmos_installs_the_highest_version_whatever_the_upload_order(client, tmp_path):
    metadata = {revision: data for (_, revision), data in revisions("marathon-lb").items()}
    newer, older = metadata[44], metadata[43]
    assert (newer["version"], older["version"]) == ("1.14.2", "1.14.1")
    assert upload(client, metadata_only_bundle(tmp_path, newer, "newer"))["state"] == "succeeded"
    assert upload(client, metadata_only_bundle(tmp_path, older, "older"))["result"]["release_version"] == 1
    served = repo(client)
    assert [served["marathon-lb", version]["releaseVersion"] for version in ("1.14.1", "1.14.2")] == [0, 1]
    assert client.get("/api/v1/packages/marathon-lb/").json()["default_version"] == "1.14.2"

    # A replace and a removal followed by the same upload publish 1.14.1 again, last: it stays below.
    changed = {**older, "description": older["description"] + " (rebuilt)"}
    assert upload(client, metadata_only_bundle(tmp_path, changed, "changed"), replace=True)["state"] == "succeeded"
    assert cosmos_pick(repo(client), "marathon-lb") == "1.14.2"
    assert client.delete("/api/v1/packages/marathon-lb/versions/1.14.1/").status_code == 200
    assert upload(client, metadata_only_bundle(tmp_path, older, "older-again"))["result"]["release_version"] == 3
    for dcos in [None] + DCOS_VERSIONS[1:]:  # marathon-lb 1.14 needs DC/OS 1.9
        assert cosmos_pick(repo(client, dcos=dcos), "marathon-lb") == "1.14.2", dcos


def test_a_pinned_version_is_what_cosmos_installs_until_it_is_removed(client, tmp_path):
    # Universe published avi 16.2, then 2.0: the scheme changed, the newest release has the lower number.
    for (_, revision), metadata in sorted(revisions("avi").items()):
        assert upload(client, metadata_only_bundle(tmp_path, metadata, f"avi-{revision}"))["state"] == "succeeded"
    first = client.get("/repo", HTTP_ACCEPT=COSMOS_ACCEPT)
    assert cosmos_pick(packages_of(first), "avi") == "16.2"

    pinned = pin(client, "avi", "2.0")
    assert pinned.status_code == 200, pinned.content
    assert pinned.json() == {"name": "avi", "url": "http://testserver/api/v1/packages/avi/",
                             "default_version": "2.0", "pinned_version": "2.0"}
    package = client.get("/api/v1/packages/avi/").json()
    assert (package["default_version"], package["pinned_version"]) == ("2.0", "2.0")
    again = client.get("/repo", HTTP_ACCEPT=COSMOS_ACCEPT)
    assert again["ETag"] != first["ETag"]
    assert {key: entry["releaseVersion"] for key, entry in packages_of(again).items()} == {
        ("avi", "16.2"): 0, ("avi", "2.0"): 1}
    # Nothing changed: the same bytes (Cosmos caches a repository for a minute, then asks again).
    assert client.get("/repo", HTTP_ACCEPT=COSMOS_ACCEPT).content == again.content

    # A replace keeps the pin: it names a version, not one upload of it.
    replacement = {**revisions("avi")[("avi", 2)], "description": "rebuilt"}
    assert upload(client, metadata_only_bundle(tmp_path, replacement, "avi-2b"), replace=True)["state"] == "succeeded"
    assert cosmos_pick(repo(client), "avi") == "2.0"

    assert client.delete("/api/v1/packages/avi/versions/2.0/").status_code == 200
    package = client.get("/api/v1/packages/avi/").json()
    assert (package["default_version"], package["pinned_version"]) == ("16.2", None)
    assert cosmos_pick(repo(client), "avi") == "16.2"
    # Published again, 2.0 is not the default: the removal took the pin with it.
    assert upload(client, metadata_only_bundle(tmp_path, replacement, "avi-2c"))["state"] == "succeeded"
    assert cosmos_pick(repo(client), "avi") == "16.2"
    assert list(AuditEvent.objects.filter(action=AuditEvent.Action.DEFAULT_VERSION).values_list(
        "target", "details")) == [("avi", {"version": "2.0", "previous": None})]


# The corpus' packages with most revisions (and avi, whose newest release has the lower version number).
SHUFFLED = ("marathon", "marathon-lb", "kafka", "avi")
# A cluster that sees some versions of each: where the registry's default is hidden, the highest it sees.
EDGE_RULES = [{"package_name": "marathon", "versions": "1.4.*,1.5.*"}, {"package_name": "marathon-lb"},
              {"package_name": "kafka", "versions": "2.*"}, {"package_name": "avi", "versions": "16.2"}]


class Catalogue:
    """Uploads and removals through the API, remembering what each published version holds now."""

    def __init__(self, client, directory: Path):
        self.client, self.directory = client, directory
        self.current: dict[tuple[str, str], dict] = {}  # what is published, by (name, version)
        self.revision: dict[tuple[str, str], int] = {}  # the corpus revision it is
        self.uploads = 0

    def publish(self, metadata: dict, revision: int | None) -> None:
        key = (metadata["name"], metadata["version"])
        self.uploads += 1
        bundle = metadata_only_bundle(self.directory, metadata, f"upload-{self.uploads}")
        job = upload(self.client, bundle, replace=key in self.current)
        assert job["state"] == "succeeded", job["error"]
        self.current[key] = metadata
        if revision is not None:
            self.revision[key] = revision

    def remove(self, key: tuple[str, str]) -> None:
        assert self.client.delete(f"/api/v1/packages/{key[0]}/versions/{key[1]}/").status_code == 200
        del self.current[key]


def check_release_versions(views: dict[str, tuple[Client, str, Client]]) -> list[str]:
    """For every view (a repository and the API as its cluster sees the catalogue) and DC/OS version: the
    releaseVersions rank the versions as the API does, its default version on top."""
    problems = []
    for view, (repo_client, path, api_client) in views.items():
        orders = {name: registry_order(api_client, name) for name in SHUFFLED}
        for dcos in [None] + DCOS_VERSIONS:
            served = repo(repo_client, path, dcos)
            problems += [f"{view} at DC/OS {dcos}: {problem}" for problem in release_order_problems(served, orders)]
            for name, order in orders.items():
                if order and (name, order[-1]) in served and cosmos_pick(served, name) != order[-1]:
                    problems.append(f"{view} at DC/OS {dcos}: Cosmos installs {name} {cosmos_pick(served, name)}, "
                                    f"the API's default is {order[-1]}")
    return problems


def test_shuffled_uploads_replaces_removals_and_pins_keep_cosmos_on_the_default_version(client, tmp_path):
    assert client.post("/api/v1/clusters/", {"name": "edge", "sees_all_packages": False, "rules": EDGE_RULES},
                       content_type="application/json").status_code == 201
    edge_token = create_token("edge", "read", Cluster.objects.get(), actor=TEST_ACTOR)[1]
    edge_api = Client(headers={"Authorization": f"Bearer {edge_token}"})
    views = {"/repo": (client, "/repo", client), "edge": (client, "/clusters/edge/repo", edge_api)}
    corpus = revisions(*SHUFFLED)
    assert len(corpus) == 50
    rng = random.Random(1521)
    order = list(corpus)
    rng.shuffle(order)
    catalogue = Catalogue(client, tmp_path)
    problems = []
    for step, (name, revision) in enumerate(order, 1):
        catalogue.publish(corpus[name, revision], revision)  # a version seen before replaces the earlier revision
        key = rng.choice(sorted(catalogue.current))
        if step % 3 == 0:
            # Removed and published again: under upload-order numbering it would jump to the top.
            metadata = catalogue.current[key]
            catalogue.remove(key)
            catalogue.publish(metadata, None)
        elif step % 3 == 1:
            # Replaced with other content, then with what it was.
            metadata = catalogue.current[key]
            catalogue.publish({**metadata, "description": f"rebuilt at step {step}"}, None)
            catalogue.publish(metadata, None)
        if ("avi", "2.0") in catalogue.current and not client.get("/api/v1/packages/avi/").json()["pinned_version"]:
            assert pin(client, "avi", "2.0").status_code == 200
        if step % 7 == 0:
            problems += [f"after step {step}: {problem}" for problem in check_release_versions(views)]
    assert not problems, "\n".join(problems[:40])

    # The pinned version removed, then published again: the highest version is the default until pinned again.
    catalogue.remove(("avi", "2.0"))
    catalogue.publish(corpus["avi", 2], 2)
    assert client.get("/api/v1/packages/avi/").json()["default_version"] == "16.2"
    problems += check_release_versions(views)
    assert pin(client, "avi", "2.0").json()["default_version"] == "2.0"
    problems += check_release_versions(views)
    assert not problems, "\n".join(problems[:40])

    # Apart from releaseVersion, every entry is the Universe generator's, in every view.
    assert len(catalogue.current) == 48  # two versions were in the corpus twice
    edge = visibility_of(Cluster.objects.get())
    for stem, dcos in [("universe", None)] + [(f"repo-up-to-{version}", version) for version in DCOS_VERSIONS]:
        expected = {key: package for key, package in expected_repo(stem, catalogue.revision).items()
                    if key[0] in SHUFFLED}
        problems += [f"{stem}: {problem}" for problem in differences(repo(client, dcos=dcos), expected)]
        seen = {key: package for key, package in expected.items() if edge.allows(*key)}
        problems += [f"edge {stem}: {problem}"
                     for problem in differences(repo(client, "/clusters/edge/repo", dcos), seen)]
    assert not problems, "\n".join(problems[:40])
    # Where the cluster does not see the pinned version, it gets the highest it sees.
    assert registry_order(edge_api, "avi") == ["16.2"]
    assert cosmos_pick(repo(client, "/clusters/edge/repo"), "avi") == "16.2"
