"""GET /repo as Cosmos reads it: the Universe generator's outputs for every DC/OS version, URL and image
rewriting, content negotiation, gzip, ETags (the parts are tested one by one in tests/packages_app/repo/)."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from dcos_bundle.format import BUNDLE_MEDIA_TYPE, METADATA_MEMBER
from dcos_bundle.universe.migrate import metadata_from_package_directory
from dcos_bundle.writer import BundleWriter
from packages_app.coordinates import registry_host, resource_path, resource_url
from tests.bundles import make_bundle
from tests.corpus import SCHEMA_DIR, UNIVERSE_DIR, package_dirs, revision_id
from tests.factories import PackageFactory, PackageVersionFactory

pytestmark = pytest.mark.usefixtures("registry")

EXPECTED_DIR = UNIVERSE_DIR / "expected"
DCOS_VERSIONS = ["1.8", "1.9", "1.10", "1.11", "1.12", "1.13", "2.0"]
REPO_TYPE = "application/vnd.dcos.universe.repo+json;charset=utf-8;version={}"
COSMOS_ACCEPT = ",".join(REPO_TYPE.format(version) for version in ("v5", "v4", "v3"))
ERROR_TYPE = "application/vnd.dcos.package.error+json;charset=utf-8;version=v1"


def upload(client, path, replace=False) -> dict:
    response = client.post("/api/v1/bundles/" + ("?replace=true" if replace else ""), data=path.read_bytes(),
                           content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202, response.content
    return client.get(response["Location"]).json()


def metadata_only_bundle(directory, metadata: dict, stem: str):
    with BundleWriter(directory / f"{stem}.dcos") as writer:
        writer.write_json(METADATA_MEMBER, metadata)
        return writer.commit()


def get_repo(client, accept=COSMOS_ACCEPT, dcos=None, **headers):
    if accept is not None:
        headers["HTTP_ACCEPT"] = accept
    if dcos is not None:
        headers["HTTP_USER_AGENT"] = f"cosmos/0.6.0 dcos/{dcos}"
    return client.get("/repo", **headers)


def packages_of(response) -> dict[tuple[str, str], dict]:
    return {(package["name"], package["version"]): package for package in response.json()["packages"]}


def repo_validator(content_type: str) -> Draft4Validator:
    """The generator's check: the v3/v4/v5 repository schema, its $refs resolved beside it."""
    registry = Registry().with_resources(
        (path.name, Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT4))
        for path in SCHEMA_DIR.glob("v*-repo-*.json")
    )
    version = content_type.rsplit("=", 1)[1]
    return Draft4Validator(json.loads((SCHEMA_DIR / f"{version}-repo-schema.json").read_text()), registry=registry)


def comparable(package: dict) -> dict:
    """What must match: all but what a repository assigns. Packaging 2.0 is published as 3.0 (its superset)."""
    package = {key: value for key, value in package.items() if key not in ("releaseVersion", "selected")}
    if package["packagingVersion"] == "2.0":
        package["packagingVersion"] = "3.0"
    return package


def first_difference(mine, theirs, where="") -> str | None:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(mine.keys() | theirs.keys()):
            found = first_difference(mine.get(key), theirs.get(key), f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        found = (first_difference(a, b, f"{where}/{n}") for n, (a, b) in enumerate(zip(mine, theirs)))
        return next(filter(None, found), None)
    return None if mine == theirs else f"{where}: {mine!r:.120} != {theirs!r:.120}"


def differences(ours: dict, expected: dict) -> list[str]:
    problems = [f"missing {key}" for key in sorted(expected.keys() - ours.keys())]
    problems += [f"unexpected {key}" for key in sorted(ours.keys() - expected.keys())]
    for key in sorted(expected.keys() & ours.keys()):
        found = first_difference(comparable(ours[key]), comparable(expected[key]))
        if found:
            problems.append(f"{key} differs at {found}")
        # The install form lists options in the config schema's order: it must survive storage.
        if key_order(ours[key].get("config")) != key_order(expected[key].get("config")):
            problems.append(f"{key}: config keys in another order")
    return problems


def key_order(document) -> list:
    if isinstance(document, dict):
        return [(key, key_order(value)) for key, value in document.items()]
    if isinstance(document, list):
        return [key_order(item) for item in document]
    return []


def expected_repo(stem: str, last_revision: dict[tuple[str, str], int]) -> dict[tuple[str, str], dict]:
    """The generator's packages of ``stem`` whose revisions were uploaded last (a replaced one is gone from our
    catalogue), by (name, version)."""
    return {
        (package["name"], package["version"]): package
        for package in json.loads(gzip.decompress((EXPECTED_DIR / f"{stem}.json.gz").read_bytes()))["packages"]
        if package["releaseVersion"] == last_revision.get((package["name"], package["version"]))
    }


def registry_order(client, name: str) -> list[str]:
    """A package's versions in the order the registry ranks them, its default last, from the catalogue API
    (as ``client`` sees it; none when it sees none)."""
    response = client.get(f"/api/v1/packages/{name}/")
    if response.status_code == 404:
        return []
    package = response.json()
    default = package["default_version"]
    return [version["version"] for version in package["versions"] if version["version"] != default] + [default]


def release_order_problems(served: dict[tuple[str, str], dict], orders: dict[str, list[str]]) -> list[str]:
    """Where the releaseVersions a repository gives a package's versions disagree with the registry's order."""
    by_package: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (name, version), package in served.items():
        by_package[name].append((package["releaseVersion"], version))
    problems = []
    for name, numbered in sorted(by_package.items()):
        ranked = [version for _, version in sorted(numbered)]
        if len({number for number, _ in numbered}) != len(numbered):
            problems.append(f"{name}: two versions share a releaseVersion: {sorted(numbered)}")
        elif ranked != [version for version in orders[name] if version in ranked]:
            problems.append(f"{name}: releaseVersions rank {ranked}, the registry {orders[name]}")
    return problems


def test_every_corpus_revision_is_served_as_the_universe_generator_served_it(client, tmp_path):
    """All 361 revisions uploaded as metadata-only bundles, then /repo for each DC/OS version the generator
    rendered: same Content-Type, same packages, valid against the same repository schema; and releaseVersions
    that make Cosmos install the registry's default version."""
    last_revision: dict[tuple[str, str], int] = {}
    uploaded: dict[str, list[int]] = defaultdict(list)
    last_upload: dict[str, str] = {}
    for directory in package_dirs():  # per package, in revision order
        metadata = metadata_from_package_directory(directory)
        key = (metadata["name"], metadata["version"])
        bundle = metadata_only_bundle(tmp_path, metadata, revision_id(directory).replace("/", "-"))
        job = upload(client, bundle, replace=key in last_revision)
        assert job["state"] == "succeeded", (revision_id(directory), job["error"])
        last_revision[key] = int(directory.name)
        uploaded[key[0]].append(job["result"]["release_version"])
        last_upload[key[0]] = key[1]
    assert len(last_revision) == 356  # five versions were uploaded twice, the second time replacing the first
    for name, numbers in uploaded.items():
        assert numbers == sorted(set(numbers)), f"{name}: release versions not increasing in upload order: {numbers}"

    orders = {name: registry_order(client, name) for name in uploaded}
    # Numbered in upload order, as a Universe repository numbers its revisions, /repo would have made Cosmos
    # install another version than the registry's default for these packages (of those with several versions).
    assert sum(len(order) > 1 for order in orders.values()) == 63
    assert sorted(name for name, order in orders.items() if order[-1] != last_upload[name]) == [
        "avi", "kibana", "portworx"]

    problems = []
    for stem, dcos in [("universe", None)] + [(f"repo-up-to-{version}", version) for version in DCOS_VERSIONS]:
        response = get_repo(client, dcos=dcos)
        content_type = (EXPECTED_DIR / f"{stem}.content_type").read_text()
        assert (response.status_code, response["Content-Type"]) == (200, content_type), stem
        ours = packages_of(response)
        problems += [f"{stem}: {problem}" for problem in differences(ours, expected_repo(stem, last_revision))]
        problems += [f"{stem}: {problem}" for problem in release_order_problems(ours, orders)]
        problems += [f"{stem}: schema: {error.message[:200]}"
                     for error in repo_validator(content_type).iter_errors(response.json())]
    assert not problems, "\n".join(problems[:40])


def test_downgrade_and_escaping_below_dcos_1_10(client, tmp_path):
    metadata = metadata_from_package_directory(next(
        path for path in package_dirs() if revision_id(path) == "marathon/2"))
    metadata.update(packagingVersion="4.0", upgradesFrom=["*"], downgradesTo=["*"], minDcosReleaseVersion="1.9")
    metadata.pop("command", None)
    assert upload(client, metadata_only_bundle(tmp_path, metadata, "marathon"))["state"] == "succeeded"
    description = metadata["config"]["properties"]["marathon"]["properties"]["mesos-leader-ui-url"]["description"]
    assert '(e.g. "http://mesos_host:5050")' in description

    old = packages_of(get_repo(client, dcos="1.9"))[("marathon", metadata["version"])]
    assert old["packagingVersion"] == "3.0" and "upgradesFrom" not in old and "downgradesTo" not in old
    old_description = old["config"]["properties"]["marathon"]["properties"]["mesos-leader-ui-url"]["description"]
    assert old_description == description.replace('"', '\\"')

    current = packages_of(get_repo(client, dcos="1.10"))[("marathon", metadata["version"])]
    assert current["packagingVersion"] == "4.0" and current["upgradesFrom"] == ["*"]
    assert current["config"] == metadata["config"]
    # A v3-only client of a newer cluster gets the downgrade without the old Cosmos's escaping.
    v3 = packages_of(get_repo(client, accept=REPO_TYPE.format("v3"), dcos="1.11"))[("marathon", metadata["version"])]
    assert v3["packagingVersion"] == "3.0" and v3["config"] == metadata["config"]


def test_stored_assets_and_images_point_at_this_registry(client, tmp_path):
    built = make_bundle(tmp_path / "b")
    assert upload(client, built.path)["state"] == "succeeded"
    package = packages_of(get_repo(client))[("hello", "1.0.0")]
    asset, image = built.manifest.assets[0], built.manifest.images[0]
    assert package["resource"]["assets"]["uris"]["payload"] == resource_url(
        "hello", "1.0.0", asset.digest, "payload.tgz")
    assert package["resource"]["assets"]["container"]["docker"]["server"] == (
        f"{registry_host()}/example/hello@{image.manifest_digest}")
    assert image.manifest_digest.startswith("sha256:")
    assert package["releaseVersion"] == 0
    # What /repo hands out, /resource serves.
    assert client.get(resource_path("hello", "1.0.0", asset.digest, "payload.tgz")).status_code == 200


@pytest.mark.parametrize("accept, dcos, served", [
    (COSMOS_ACCEPT, None, "v5"),
    (None, None, "v5"),
    ("*/*", None, "v5"),
    ("application/*", None, "v5"),
    ("application/vnd.dcos.universe.repo+json", None, "v5"),
    (f"{REPO_TYPE.format('v4')},{REPO_TYPE.format('v3')}", None, "v4"),
    (f"{REPO_TYPE.format('v5')};q=0.5, {REPO_TYPE.format('v4')}", None, "v4"),
    (f"text/html, {REPO_TYPE.format('v3')};q=0.9", None, "v3"),
    (COSMOS_ACCEPT, "1.9", "v3"),
    (COSMOS_ACCEPT, "1.11", "v4"),
    ("*/*", "1.11.4", "v4"),
    (COSMOS_ACCEPT, "1.12", "v5"),
])
def test_the_best_repository_version_both_sides_accept(client, hello, accept, dcos, served):
    response = get_repo(client, accept=accept, dcos=dcos)
    assert response.status_code == 200
    assert response["Content-Type"] == f"application/vnd.dcos.universe.repo+json;charset=utf-8;version={served}"
    package = response.json()["packages"][0]
    # The test package is 4.0: a v3 repository carries it as 3.0.
    assert package["packagingVersion"] == ("3.0" if served == "v3" else "4.0")


@pytest.mark.parametrize("accept, dcos", [
    ("application/json", None),
    ("text/html, application/vnd.dcos.universe.repo+json;q=0", None),
    (REPO_TYPE.format("v5"), "1.9"),
])
def test_nothing_acceptable_is_a_406_in_cosmos_error_shape(client, hello, accept, dcos):
    response = get_repo(client, accept=accept, dcos=dcos)
    assert response.status_code == 406
    assert response["Content-Type"] == ERROR_TYPE
    error = response.json()
    assert error["type"] == "IncompatibleAcceptHeader"
    assert REPO_TYPE.format("v3") in error["message"] and error["data"]["specified"] == accept
    assert REPO_TYPE.format("v3") in error["data"]["available"]


def test_min_dcos_release_version_filters_in_loose_version_order(client, hello):
    # hello needs 1.9: as strings "1.10" < "1.9", as versions 1.10 is newer.
    assert set(packages_of(get_repo(client, dcos="1.10"))) == {("hello", "1.0.0")}
    assert set(packages_of(get_repo(client, dcos="1.9.0"))) == {("hello", "1.0.0")}
    assert packages_of(get_repo(client, dcos="1.8")) == {}


def test_a_5_0_package_never_reaches_a_v3_or_v4_repository(client, hello):
    metadata = {"packagingVersion": "5.0", "name": "managed", "version": "1.0", "maintainer": "m",
                "description": "d", "tags": [], "manager": {"packageName": "hello"}}
    PackageVersionFactory(package__name="managed", package__last_release_version=0, version="1.0",
                          packaging_version="5.0", release_version=0, metadata=metadata)
    assert ("managed", "1.0") in packages_of(get_repo(client))
    assert ("managed", "1.0") in packages_of(get_repo(client, dcos="1.12"))
    assert set(packages_of(get_repo(client, dcos="1.11"))) == {("hello", "1.0.0")}
    assert set(packages_of(get_repo(client, accept=REPO_TYPE.format("v4")))) == {("hello", "1.0.0")}


def test_a_broken_row_is_left_out_not_a_500(client, hello):
    package = PackageFactory(name="broken", last_release_version=1)
    for release, metadata in enumerate([["not", "an", "object"], {"packagingVersion": "9.0", "name": "broken"}]):
        PackageVersionFactory(package=package, version=f"{release}.0", release_version=release, metadata=metadata)
    response = get_repo(client)
    assert response.status_code == 200
    assert set(packages_of(response)) == {("hello", "1.0.0")}


def test_gzip_when_the_client_takes_it(client, hello):
    plain = get_repo(client)
    assert "Content-Encoding" not in plain
    zipped = get_repo(client, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped["Content-Length"] == str(len(zipped.content))
    assert zipped["ETag"] != plain["ETag"]
    assert {part.strip() for part in zipped["Vary"].split(",")} >= {"Accept", "Accept-Encoding", "User-Agent"}
    assert "Content-Encoding" not in get_repo(client, HTTP_ACCEPT_ENCODING="gzip;q=0, identity")


def test_etag_answers_304_and_head_answers_headers(client, hello):
    first = get_repo(client, dcos="1.12")
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = get_repo(client, dcos="1.12", HTTP_IF_NONE_MATCH=f'"other", W/{etag}')
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert again["Vary"] == first["Vary"] and again["Cache-Control"] == "no-cache"
    assert get_repo(client, dcos="1.12", HTTP_IF_NONE_MATCH="*").status_code == 304
    # Another DC/OS version sees other bytes: the tag does not match.
    assert get_repo(client, dcos="1.9", HTTP_IF_NONE_MATCH=etag).status_code == 200
    assert get_repo(client, dcos="1.12", HTTP_IF_MATCH='"other"').status_code == 412
    head = client.head("/repo", HTTP_ACCEPT=COSMOS_ACCEPT, HTTP_USER_AGENT="cosmos/0.6.0 dcos/1.12")
    assert head.status_code == 200 and head.content == b""
    assert (head["ETag"], head["Content-Length"], head["Content-Type"]) == (
        etag, str(len(first.content)), first["Content-Type"])
    assert client.post("/repo").status_code == 405
