"""The Docker Registry v2 read side: manifests, blobs, tags and catalogue of the published images,
errors as the distribution spec has them; and real clients (dockerd, skopeo) pulling and running
an image published in a bundle."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import docker
import pytest
from django.db import OperationalError
from django.test import Client

from access.models import Cluster
from access.tokens import create_token
from blobs.drivers import BlobStoreUnavailable
from dcos_bundle.format import (
    BUNDLE_MEDIA_TYPE,
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    OCI_MANIFEST_MEDIA_TYPE,
    ImageEntry,
    Manifest,
    bundle_file_name,
    json_pointer,
)
from dcos_bundle.oci import ImageSet, spool_layer
from dcos_bundle.writer import BundleWriter
from packages_app import registry_v2
from packages_app.models import PackageVersion
from tests.actors import TEST_ACTOR
from tests.bundles import AssetSpec, ImageSpec, make_bundle, package_metadata
from tests.factories import BlobFactory
from tests.services import service_missing

pytestmark = pytest.mark.usefixtures("registry")

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def publish(client, directory: Path, **bundle):
    built = make_bundle(directory, **bundle)
    publish_file(client, built.path)
    return built


def publish_file(client, path: Path) -> None:
    response = client.post("/api/v1/bundles/", data=path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202, response.content
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]


def v2(client, path: str, method: str = "GET", **headers):
    """A request to the registry API; every answer carries the API version header."""
    response = client.generic(method, path, headers=headers)
    assert response[API_VERSION[0]] == API_VERSION[1]
    return response


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, body(response)
    assert response["Content-Type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["code"] == code and error["message"] and isinstance(error["detail"], dict)
    return error


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def hello(client, tmp_path, registry):
    """hello 1.0.0 with the image example/hello:1.0.0 (two layers), published."""
    built = publish(client, tmp_path / "hello", images=[ImageSpec("server", "example/hello:1.0.0", [200_000, 3000])])
    digest = built.manifest.images[0].manifest_digest
    manifest = registry.open(digest).read()
    document = json.loads(manifest)
    return {
        "built": built, "digest": digest, "manifest": manifest, "config": document["config"]["digest"],
        "layers": [layer["digest"] for layer in document["layers"]],
    }


def test_base_answers_that_no_authentication_is_needed(client):
    for path in ("/v2/", "/v2"):
        response = v2(client, path)
        assert response.status_code == 200 and response.json() == {}
    assert v2(client, "/v2/", "HEAD").status_code == 200


@pytest.mark.parametrize("reference", ["1.0.0", "digest"])
def test_manifest_by_tag_and_by_digest_is_the_stored_document(client, hello, reference):
    path = f"/v2/example/hello/manifests/{hello['digest'] if reference == 'digest' else reference}"
    # A client that asks only for Docker schema2 still gets the OCI manifest the digest names.
    for accept in (OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST):
        got = v2(client, path, Accept=accept)
        assert got.status_code == 200
        assert got.content == hello["manifest"] and sha256(got.content) == hello["digest"]
        assert got["Content-Type"] == OCI_MANIFEST_MEDIA_TYPE
        assert got["Docker-Content-Digest"] == hello["digest"]
        assert got["Content-Length"] == str(len(hello["manifest"]))
        assert got["ETag"] == f'"{hello["digest"]}"'
    head = v2(client, path, "HEAD")
    assert head.status_code == 200 and head.content == b""
    for header in ("Content-Type", "Docker-Content-Digest", "Content-Length", "ETag"):
        assert head[header] == got[header]


def test_a_manifest_the_client_holds_answers_304(client, hello):
    for reference in ("1.0.0", hello["digest"]):
        path = f"/v2/example/hello/manifests/{reference}"
        for if_none_match in (f'"{hello["digest"]}"', f'W/"{hello["digest"]}"', f'"a", "{hello["digest"]}"', "*"):
            response = v2(client, path, **{"If-None-Match": if_none_match})
            assert response.status_code == 304 and response.content == b""
            assert response["ETag"] == f'"{hello["digest"]}"' and response["Docker-Content-Digest"] == hello["digest"]
        assert v2(client, path, **{"If-None-Match": '"sha256:' + "0" * 64 + '"'}).status_code == 200


def test_blobs_stream_whole_with_their_headers(client, hello, registry):
    for digest in [hello["config"], *hello["layers"], hello["digest"]]:
        content = registry.open(digest).read()
        response = v2(client, f"/v2/example/hello/blobs/{digest}")
        assert response.status_code == 200 and response.streaming
        assert body(response) == content
        assert response["Content-Length"] == str(len(content))
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Docker-Content-Digest"] == digest
        assert response["Accept-Ranges"] == "bytes"
        head = v2(client, f"/v2/example/hello/blobs/{digest}", "HEAD")
        assert head.status_code == 200 and head.content == b""
        assert head["Content-Length"] == str(len(content)) and head["Docker-Content-Digest"] == digest


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-99", 0, 99), ("bytes=1000-", 1000, None), ("bytes=-500", -500, None),
    ("bytes=150000-999999999", 150000, None), ("bytes=0-0", 0, 0),
])
def test_a_single_range_answers_206(client, hello, registry, header, start, end):
    layer = hello["layers"][0]
    content = registry.open(layer).read()
    size = len(content)
    first = start % size
    last = size - 1 if end is None else end
    response = v2(client, f"/v2/example/hello/blobs/{layer}", Range=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Docker-Content-Digest"] == layer
    assert body(response) == content[first:last + 1]
    head = v2(client, f"/v2/example/hello/blobs/{layer}", "HEAD", Range=header)
    assert head.status_code == 206 and head["Content-Range"] == response["Content-Range"]


@pytest.mark.parametrize("if_none_match", ['"{digest}"', 'W/"{digest}"', '"other", W/"{digest}"', "*"])
def test_a_blob_the_client_holds_answers_304(client, hello, if_none_match):
    layer = hello["layers"][0]
    for method in ("GET", "HEAD"):
        response = v2(client, f"/v2/example/hello/blobs/{layer}", method,
                      **{"If-None-Match": if_none_match.format(digest=layer)})
        assert response.status_code == 304 and body(response) == b""
        assert response["ETag"] == f'"{layer}"' and response["Docker-Content-Digest"] == layer
    other = v2(client, f"/v2/example/hello/blobs/{layer}", **{"If-None-Match": f'W/"{hello["config"]}"'})
    assert other.status_code == 200


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-10"])
def test_ranges_we_do_not_serve_get_the_whole_blob(client, hello, registry, header):
    layer = hello["layers"][1]
    response = v2(client, f"/v2/example/hello/blobs/{layer}", Range=header)
    assert response.status_code == 200 and body(response) == registry.open(layer).read()


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{end}", "bytes=-0", "bytes=9-3", "bytes=x-1"])
def test_unsatisfiable_range_answers_416(client, hello, registry, header):
    layer = hello["layers"][1]
    size = registry.stat(layer).size
    response = v2(client, f"/v2/example/hello/blobs/{layer}", Range=header.format(size=size, end=size + 10))
    error = error_of(response, 416, "RANGE_INVALID")
    assert response["Content-Range"] == f"bytes */{size}"
    assert error["detail"] == {"digest": layer, "size": size}


def test_an_outage_answers_unavailable_with_retry_after(client, hello, registry, monkeypatch, settings):
    settings.OUTAGE_RETRY_AFTER_SECONDS = 7

    def blob_store_away(*args, **kwargs):
        raise BlobStoreUnavailable("open")

    monkeypatch.setattr(registry, "open", blob_store_away)
    for path in (f"/v2/example/hello/blobs/{hello['layers'][0]}", "/v2/example/hello/manifests/1.0.0"):
        response = v2(client, path)
        assert "blob store is unavailable" in error_of(response, 503, "UNAVAILABLE")["message"]
        assert response["Retry-After"] == "7"

    def database_away(*args, **kwargs):
        raise OperationalError("connection to server at db.internal failed")

    monkeypatch.setattr(registry_v2, "repository_images", database_away)
    response = v2(client, "/v2/example/hello/tags/list")
    assert "database is unavailable" in error_of(response, 503, "UNAVAILABLE")["message"]
    assert b"db.internal" not in response.content


def test_references_name_repositories_as_docker_does(client, tmp_path):
    publish(client, tmp_path / "b", images=[
        ImageSpec("web", "nginx:1.25", [1000]),
        ImageSpec("app", "registry.example.com:5000/Team/App:2.0", [1000], seed=1),
        ImageSpec("hub", "docker.io/mesosphere/kafka:2.3.0-1.1.0", [1000], seed=2),
        ImageSpec("bare", "example/bare", [1000], seed=3),
    ])
    assert v2(client, "/v2/_catalog").json() == {
        "repositories": ["example/bare", "library/nginx", "mesosphere/kafka", "team/app"]}
    for repository, tag in [("library/nginx", "1.25"), ("team/app", "2.0"), ("mesosphere/kafka", "2.3.0-1.1.0"),
                            ("example/bare", "latest")]:
        assert v2(client, f"/v2/{repository}/tags/list").json() == {"name": repository, "tags": [tag]}
        assert v2(client, f"/v2/{repository}/manifests/{tag}").status_code == 200


def test_an_image_published_by_digest_has_no_tag_but_is_pulled_by_its_manifest_digest(client, tmp_path):
    reference = "example/pinned@sha256:" + "ab" * 32
    built = publish(client, tmp_path / "b", images=[ImageSpec("server", reference, [1000])])
    assert v2(client, "/v2/example/pinned/tags/list").json() == {"name": "example/pinned", "tags": []}
    digest = built.manifest.images[0].manifest_digest
    assert v2(client, f"/v2/example/pinned/manifests/{digest}").status_code == 200


def test_a_tag_is_the_most_recently_published_image_of_that_name(client, tmp_path):
    def image(seed):
        return [ImageSpec("server", "example/shared:stable", [5000], seed=seed)]

    first = publish(client, tmp_path / "1", name="alpha", images=image(1)).manifest.images[0].manifest_digest
    second = publish(client, tmp_path / "2", name="beta", images=image(2)).manifest.images[0].manifest_digest
    assert first != second
    assert v2(client, "/v2/example/shared/manifests/stable")["Docker-Content-Digest"] == second
    # The older image stays reachable by its digest.
    assert v2(client, f"/v2/example/shared/manifests/{first}").status_code == 200
    assert v2(client, "/v2/example/shared/tags/list").json()["tags"] == ["stable"]

    PackageVersion.objects.get(package__name="beta").delete()
    assert v2(client, "/v2/example/shared/manifests/stable")["Docker-Content-Digest"] == first
    error_of(v2(client, f"/v2/example/shared/manifests/{second}"), 404, "MANIFEST_UNKNOWN")


def test_a_docker_hub_name_answers_with_and_without_library(client, tmp_path):
    """As on Docker Hub, `nginx` and `library/nginx` are one repository, whichever spelling the bundle used."""
    built = publish(client, tmp_path / "b", images=[
        ImageSpec("web", "nginx:1.10.1", [1000]),
        ImageSpec("box", "registry.example.com:5000/busybox:1.36", [1000], seed=1),
    ])
    nginx, busybox = (image.manifest_digest for image in built.manifest.images)
    layer = built.layers["nginx:1.10.1"][0].digest
    for name in ("nginx", "library/nginx"):
        for reference in ("1.10.1", nginx):
            response = v2(client, f"/v2/{name}/manifests/{reference}")
            assert response.status_code == 200 and response["Docker-Content-Digest"] == nginx
        assert v2(client, f"/v2/{name}/blobs/{layer}", "HEAD").status_code == 200
        assert v2(client, f"/v2/{name}/tags/list").json() == {"name": name, "tags": ["1.10.1"]}
    for name in ("busybox", "library/busybox"):
        assert v2(client, f"/v2/{name}/manifests/1.36")["Docker-Content-Digest"] == busybox
    # One repository each in the catalogue, under the name its reference gives it.
    assert v2(client, "/v2/_catalog").json() == {"repositories": ["busybox", "library/nginx"]}
    # Only the `library/` namespace is implied, and only for a single name.
    for name in ("team/nginx", "library/library/nginx", "nginx/library"):
        error_of(v2(client, f"/v2/{name}/manifests/1.10.1"), 404, "NAME_UNKNOWN")
    error_of(v2(client, f"/v2/nginx/blobs/{built.layers['registry.example.com:5000/busybox:1.36'][0].digest}"),
             404, "BLOB_UNKNOWN")


def test_a_clusters_token_pulls_only_its_clusters_versions(client, tmp_path, settings):
    def image(seed):
        return [ImageSpec("server", "example/shared:stable", [2000], seed=seed)]

    old = publish(client, tmp_path / "1", version="1.0.0", images=image(1))
    new = publish(client, tmp_path / "2", version="2.0.0", images=image(2))
    publish(client, tmp_path / "3", name="other", images=[ImageSpec("server", "example/other:1", [2000], seed=3)])
    cluster = Cluster.objects.create(name="prod", sees_all_packages=False)
    cluster.rules.create(package_name="hello", versions="1.*")
    settings.ANONYMOUS_READS = False
    prod = Client(headers={"Authorization": f"Bearer {create_token('prod pull', 'read', cluster, actor=TEST_ACTOR)[1]}"})
    old_digest, new_digest = old.manifest.images[0].manifest_digest, new.manifest.images[0].manifest_digest

    assert v2(client, "/v2/example/shared/manifests/stable")["Docker-Content-Digest"] == new_digest
    # The newest version the cluster may see decides the tag; the others are not there for it.
    assert v2(prod, "/v2/example/shared/manifests/stable")["Docker-Content-Digest"] == old_digest
    error_of(v2(prod, f"/v2/example/shared/manifests/{new_digest}"), 404, "MANIFEST_UNKNOWN")
    assert v2(prod, f"/v2/example/shared/blobs/{old.layers['example/shared:stable'][0].digest}").status_code == 200
    error_of(v2(prod, f"/v2/example/shared/blobs/{new.layers['example/shared:stable'][0].digest}"), 404,
             "BLOB_UNKNOWN")
    assert v2(prod, "/v2/_catalog").json() == {"repositories": ["example/shared"]}
    error_of(v2(prod, "/v2/example/other/tags/list"), 404, "NAME_UNKNOWN")


def test_a_deleted_version_takes_its_tags_manifests_and_blobs_along(client, hello):
    PackageVersion.objects.get(package__name="hello", version="1.0.0").delete()
    assert v2(client, "/v2/_catalog").json() == {"repositories": []}
    error_of(v2(client, "/v2/example/hello/tags/list"), 404, "NAME_UNKNOWN")
    error_of(v2(client, "/v2/example/hello/manifests/1.0.0"), 404, "NAME_UNKNOWN")
    error_of(v2(client, f"/v2/example/hello/manifests/{hello['digest']}"), 404, "NAME_UNKNOWN")
    error_of(v2(client, f"/v2/example/hello/blobs/{hello['layers'][0]}"), 404, "NAME_UNKNOWN")


def test_tags_and_catalogue_are_paginated_with_a_link_to_the_next_page(client, tmp_path):
    tags = ["1.0", "1.1", "2.0", "latest", "rc"]
    publish(client, tmp_path / "b", images=[
        *[ImageSpec(f"t{index}", f"example/many:{tag}", [1000], seed=index) for index, tag in enumerate(tags)],
        *[ImageSpec(f"r{name}", f"{name}/app:1", [1000], seed=10 + index) for index, name in enumerate("cab")],
    ])

    def pages(path: str, key: str, n: int) -> list[list[str]]:
        seen, url = [], f"{path}?n={n}"
        while url:
            response = v2(client, url)
            assert response.status_code == 200
            seen.append(response.json()[key])
            link = response.get("Link")
            url = link and link.removeprefix("<").split(">", 1)[0]
            if link:
                assert link.endswith('>; rel="next"') and url.startswith(f"{path}?n={n}&last=")
        return seen

    assert v2(client, "/v2/example/many/tags/list").json() == {"name": "example/many", "tags": tags}
    assert pages("/v2/example/many/tags/list", "tags", 2) == [["1.0", "1.1"], ["2.0", "latest"], ["rc"]]
    assert pages("/v2/example/many/tags/list", "tags", 5) == [tags]
    assert v2(client, "/v2/example/many/tags/list?n=2&last=1.1")["Link"] == (
        '</v2/example/many/tags/list?n=2&last=latest>; rel="next"')
    assert v2(client, "/v2/example/many/tags/list?last=latest").json()["tags"] == ["rc"]
    assert v2(client, "/v2/example/many/tags/list?n=0").json()["tags"] == []

    repositories = ["a/app", "b/app", "c/app", "example/many"]
    assert v2(client, "/v2/_catalog").json() == {"repositories": repositories}
    assert pages("/v2/_catalog", "repositories", 3) == [repositories[:3], repositories[3:]]
    assert v2(client, "/v2/_catalog?n=1")["Link"] == '</v2/_catalog?n=1&last=a/app>; rel="next"'
    assert v2(client, "/v2/_catalog?last=zzz").json() == {"repositories": []}
    for bad in ("-1", "x"):
        error_of(v2(client, f"/v2/_catalog?n={bad}"), 400, "PAGINATION_NUMBER_INVALID")


def test_a_blob_is_served_only_under_a_repository_whose_published_image_uses_it(client, tmp_path, registry):
    built = publish(client, tmp_path / "b", assets=[AssetSpec("payload", "payload.tgz", 4000, 7)], images=[
        ImageSpec("one", "example/one:1", [2000], seed=1), ImageSpec("two", "example/two:1", [2000], seed=2)])
    one_layer = built.layers["example/one:1"][0].digest
    two_layer = built.layers["example/two:1"][0].digest
    assert v2(client, f"/v2/example/one/blobs/{one_layer}").status_code == 200
    error = error_of(v2(client, f"/v2/example/one/blobs/{two_layer}"), 404, "BLOB_UNKNOWN")
    assert error["detail"] == {"name": "example/one", "digest": two_layer}
    # The manifest of another repository, and an asset, are not blobs of this one either.
    error_of(v2(client, f"/v2/example/one/manifests/{built.manifest.images[1].manifest_digest}"), 404,
             "MANIFEST_UNKNOWN")
    error_of(v2(client, f"/v2/example/one/blobs/{built.manifest.assets[0].digest}"), 404, "BLOB_UNKNOWN")
    # In the store and in the database, but no published version uses it.
    loose = registry.put(io.BytesIO(b"not published"))
    BlobFactory(digest=loose.digest, size=loose.size)
    error_of(v2(client, f"/v2/example/one/blobs/{loose.digest}"), 404, "BLOB_UNKNOWN")
    assert v2(client, f"/v2/example/one/blobs/{loose.digest}", "HEAD").status_code == 404


def test_unknown_names_tags_and_digests(client, hello):
    missing = "sha256:" + "0" * 64
    error = error_of(v2(client, "/v2/example/nothing/manifests/1.0.0"), 404, "NAME_UNKNOWN")
    assert error["detail"] == {"name": "example/nothing"}
    error_of(v2(client, "/v2/example/nothing/tags/list"), 404, "NAME_UNKNOWN")
    error_of(v2(client, f"/v2/example/nothing/blobs/{missing}"), 404, "NAME_UNKNOWN")
    error = error_of(v2(client, "/v2/example/hello/manifests/9.9"), 404, "MANIFEST_UNKNOWN")
    assert error["detail"] == {"name": "example/hello", "reference": "9.9"}
    error_of(v2(client, f"/v2/example/hello/manifests/{missing}"), 404, "MANIFEST_UNKNOWN")
    assert v2(client, f"/v2/example/hello/manifests/{missing}", "HEAD").status_code == 404
    # A layer is a blob, not a manifest.
    error_of(v2(client, f"/v2/example/hello/manifests/{hello['layers'][0]}"), 404, "MANIFEST_UNKNOWN")
    error_of(v2(client, f"/v2/example/hello/blobs/{missing}"), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("digest", ["sha256:xyz", "sha256:" + "A" * 64, "sha512:" + "0" * 128, "md5:abc"])
def test_invalid_digests(client, hello, digest):
    error = error_of(v2(client, f"/v2/example/hello/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert error["detail"] == {"digest": digest}
    error_of(v2(client, f"/v2/example/hello/manifests/{digest}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("name", ["Example/hello", "example//hello", "example/-hello", "a_/b", "x" * 256])
def test_invalid_repository_names(client, name):
    for path in ("manifests/1.0", "blobs/sha256:" + "0" * 64, "tags/list"):
        error = error_of(v2(client, f"/v2/{name}/{path}"), 400, "NAME_INVALID")
        assert error["detail"] == {"name": name}


def test_paths_that_are_no_endpoint(client):
    for path in ("/v2/example/hello/blobs/uploads/1234", "/v2/example/hello/nothing", "/v2/_catalog/x"):
        error_of(v2(client, path), 404, "UNSUPPORTED")


@pytest.mark.parametrize("method, path", [
    ("POST", "/v2/example/hello/blobs/uploads/"),
    ("PATCH", "/v2/example/hello/blobs/uploads/1234"),
    ("PUT", "/v2/example/hello/blobs/uploads/1234?digest=sha256:" + "0" * 64),
    ("PUT", "/v2/example/hello/manifests/1.0.0"),
    ("DELETE", "/v2/example/hello/manifests/1.0.0"),
    ("DELETE", "/v2/example/hello/blobs/sha256:" + "0" * 64),
    ("POST", "/v2/"),
    ("PUT", "/v2/Not/Valid/manifests/x"),
    ("OPTIONS", "/v2/_catalog"),
])
def test_writes_are_refused_as_unsupported(hello, method, path):
    # CSRF checks on, as for a real client: they must not be what answers.
    client = Client(enforce_csrf_checks=True)
    response = client.generic(method, path, b"{}", content_type="application/json")
    assert response[API_VERSION[0]] == API_VERSION[1]
    error = error_of(response, 405, "UNSUPPORTED")
    assert "bundles" in error["message"] and error["detail"] == {"method": method}
    assert response["Allow"] == "GET, HEAD"
    assert v2(client, "/v2/example/hello/manifests/1.0.0").content == hello["manifest"]


# Real clients: dockerd pulls and runs an image this registry serves; skopeo copies it.

GREETING = "hello-from-registry"


def static_busybox() -> Path:
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        service_missing("busybox", "/bin/busybox is missing (apt-get install busybox-static)")
    with busybox.open("rb") as executable:
        # The ELF program headers of a dynamic executable name an interpreter (PT_INTERP, type 3),
        # which an image with nothing but busybox in it lacks.
        header = executable.read(64)
        phoff, phentsize, phnum = (int.from_bytes(header[0x20:0x28], "little"),
                                   int.from_bytes(header[0x36:0x38], "little"),
                                   int.from_bytes(header[0x38:0x3A], "little"))
        executable.seek(phoff)
        table = executable.read(phentsize * phnum)
    types = {int.from_bytes(table[n * phentsize:n * phentsize + 4], "little") for n in range(phnum)}
    if header[:4] != b"\x7fELF" or 3 in types:
        service_missing("busybox", "/bin/busybox is not statically linked (apt-get install busybox-static)")
    return busybox


def busybox_bundle(directory: Path, reference: str) -> tuple[Path, str]:
    """A bundle whose one image is a static busybox with /bin/sh, which prints GREETING; (path, manifest digest)."""
    directory.mkdir(parents=True)
    layer_tar = directory / "layer.tar"
    executable_path = static_busybox()
    with tarfile.open(layer_tar, "w", format=tarfile.PAX_FORMAT) as archive:
        folder = tarfile.TarInfo("bin")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(folder)
        busybox = tarfile.TarInfo("bin/busybox")
        busybox.size, busybox.mode = executable_path.stat().st_size, 0o755
        with executable_path.open("rb") as executable:
            archive.addfile(busybox, executable)
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
        archive.addfile(link)
    with layer_tar.open("rb") as stream:
        layer = spool_layer(stream, directory)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh", "-c", f"echo {GREETING}"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "tests.serving.test_registry_v2"}],
    }
    images = ImageSet()
    digest = images.add_image(reference, config, [layer])
    metadata = package_metadata("busybox", "1.0.0", [], [ImageSpec("server", reference, [])])
    manifest = Manifest(
        name="busybox", version="1.0.0", built_by={"tool": "tests"}, built_at="2026-01-01T00:00:00Z", assets=[],
        images=[ImageEntry(reference, digest, (json_pointer("resource", "assets", "container", "docker", "server"),))],
    )
    with BundleWriter(directory / bundle_file_name("busybox", "1.0.0")) as writer:
        writer.write_json(METADATA_MEMBER, metadata)
        writer.write_json(MANIFEST_MEMBER, manifest.to_json())
        images.write_into(writer)
        path = writer.commit()
    return path, digest


def serve_busybox(client, directory: Path, live_server, reference: str) -> tuple[str, str]:
    """Publish the busybox image as ``reference``; (host:port of the live server, manifest digest)."""
    path, digest = busybox_bundle(directory, reference)
    publish_file(client, path)
    # dockerd treats registries on 127.0.0.0/8 as insecure (plain HTTP) without configuration.
    return f"127.0.0.1:{live_server.thread.port}", digest

def pull_and_run(docker_client, reference: str) -> None:
    """dockerd pulls ``reference`` by digest and runs it (no network) to the greeting; the image is removed after."""
    image = docker_client.images.pull(reference)
    try:
        assert reference in image.attrs["RepoDigests"]
        output = docker_client.containers.run(image.id, remove=True, network_mode="none")
        assert output.decode().strip() == GREETING
    finally:
        try:
            docker_client.images.remove(image.id, force=True)
        except docker.errors.ImageNotFound:
            pass



@pytest.fixture
def served_busybox(client, tmp_path, live_server):
    """The busybox image published and served by a live server: (host:port, repository, tag, manifest digest)."""
    host, digest = serve_busybox(client, tmp_path / "bundle", live_server, "example/busybox:1.36")
    return host, "example/busybox", "1.36", digest


@pytest.mark.docker
def test_dockerd_pulls_by_digest_and_runs_the_image(docker_client, served_busybox):
    host, repository, _, digest = served_busybox
    pull_and_run(docker_client, f"{host}/{repository}@{digest}")


@pytest.mark.docker
def test_dockerd_pulls_a_docker_hub_image_under_both_its_names(docker_client, client, tmp_path, live_server):
    # The bundle names it as a Docker Hub official image: `busybox`, in the implied `library/` namespace.
    host, digest = serve_busybox(client, tmp_path / "bundle", live_server, "busybox:1.36")
    images = []
    try:
        for repository in (f"{host}/busybox", f"{host}/library/busybox"):
            image = docker_client.images.pull(repository, tag="1.36")
            images.append(image)
            assert f"{repository}@{digest}" in image.attrs["RepoDigests"]
            output = docker_client.containers.run(image.id, remove=True, network_mode="none")
            assert output.decode().strip() == GREETING
    finally:
        for image in images:
            try:
                docker_client.images.remove(image.id, force=True)
            except docker.errors.ImageNotFound:
                pass


@pytest.mark.docker
def test_skopeo_copies_the_image_by_tag_unchanged(served_busybox, tmp_path, registry, skopeo):
    host, repository, tag, digest = served_busybox
    layout = tmp_path / "copy"
    skopeo("copy", "--src-tls-verify=false", f"docker://{host}/{repository}:{tag}", f"oci:{layout}:{tag}")
    raw = skopeo("inspect", "--raw", f"oci:{layout}:{tag}")
    assert sha256(raw) == digest and raw == registry.open(digest).read()
    inspected = json.loads(skopeo("inspect", f"oci:{layout}:{tag}"))
    assert inspected["Digest"] == digest
    assert inspected["Layers"] == [layer["digest"] for layer in json.loads(raw)["layers"]]


@pytest.mark.docker
def test_skopeo_copies_a_docker_hub_image_under_both_its_names(client, tmp_path, live_server, registry, skopeo):
    host, digest = serve_busybox(client, tmp_path / "bundle", live_server, "busybox:1.36")
    for number, repository in enumerate(("busybox", "library/busybox")):
        layout = tmp_path / f"copy-{number}"
        skopeo("copy", "--src-tls-verify=false", f"docker://{host}/{repository}:1.36", f"oci:{layout}:1.36")
        assert sha256(skopeo("inspect", "--raw", f"oci:{layout}:1.36")) == digest


@pytest.mark.docker
def test_docker_logs_in_with_a_token_and_pulls_when_reads_need_one(docker_client, served_busybox, settings):
    settings.ANONYMOUS_READS = False
    host, repository, _, digest = served_busybox
    reference = f"{host}/{repository}@{digest}"
    with pytest.raises(docker.errors.APIError, match="(?i)unauthorized|authentication required|no basic auth"):
        docker_client.images.pull(reference)
    with pytest.raises(docker.errors.APIError, match="(?i)unauthorized|invalid|denied"):
        docker_client.login(username="ops", password="dcr_000000000000_" + "x" * 43, registry=host, reauth=True)

    # docker login: the /v2/ challenge sends it to /v2/token with Basic credentials, and Bearer from then on.
    _, plaintext = create_token("docker pull", "read", actor=TEST_ACTOR)
    assert docker_client.login(username="ops", password=plaintext, registry=host, reauth=True)["Status"]
    image = docker_client.images.pull(reference, auth_config={"username": "ops", "password": plaintext})
    try:
        assert reference in image.attrs["RepoDigests"]
    finally:
        docker_client.images.remove(image.id, force=True)
