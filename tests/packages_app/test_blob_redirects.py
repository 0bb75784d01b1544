"""Downloads with S3 storage: a blob GET of /v2 or /resource answers 307 to a presigned URL of the object on the real
S3 server (SeaweedFS), after the same checks as a streamed answer; HEAD and conditional requests answer here. Real
clients follow the redirect: dockerd, skopeo, and a plain HTTP client as Mesos fetchers are."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from blobs.store import blob_store
from packages_app.coordinates import package_coordinate
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.packages_app.test_registry_v2 import publish, publish_file, pull_and_run, serve_busybox
from tests.streams import PatternStream

ASSET_SIZE = 300_000


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3_registry(registry, s3_storage, settings):
    """The test registry, storing its blobs in SeaweedFS."""
    assert settings.S3_REDIRECT_DOWNLOADS  # the default
    return s3_storage


@pytest.fixture
def image(client, tmp_path, s3_registry):
    """example/hello:1.0.0 published; its first layer's digest and bytes."""
    built = publish(client, tmp_path / "hello", images=[ImageSpec("server", "example/hello:1.0.0", [200_000])])
    manifest = json.loads(s3_registry.open(built.manifest.images[0].manifest_digest).read())
    digest = manifest["layers"][0]["digest"]
    return digest, s3_registry.open(digest).read()


@pytest.fixture
def asset(client, tmp_path, s3_registry):
    built = make_bundle(tmp_path / "asset", assets=[AssetSpec("payload", "hello-1.0.tgz", ASSET_SIZE, 3)], images=[])
    publish_file(client, built.path)
    entry = built.manifest.assets[0]
    return (f"/resource/{package_coordinate('hello', '1.0.0')}/{entry.digest}/hello-1.0.tgz", entry.digest,
            PatternStream(ASSET_SIZE, 3).readall())


def presigned(response, settings, endpoint: str) -> str:
    """The redirect's URL, checked to be a short-lived presigned GET on ``endpoint``."""
    assert response.status_code == 307, response.content
    assert response["Cache-Control"] == "no-store"
    location = response["Location"]
    assert location.startswith(endpoint + "/")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == [str(settings.S3_REDIRECT_SECONDS)] and query["X-Amz-Signature"]
    return location


def test_a_v2_blob_get_redirects_to_s3_which_serves_the_bytes_and_ranges(client, image, settings, s3_storage):
    digest, content = image
    response = client.get(f"/v2/example/hello/blobs/{digest}")
    assert response["Docker-Content-Digest"] == digest
    location = presigned(response, settings, s3_storage.endpoint_url)
    assert sha256(requests.get(location, timeout=30).content) == digest
    ranged = requests.get(location, headers={"Range": "bytes=10-19"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == content[10:20]
    # A ranged GET is redirected too (the client sends its Range to S3), unless it cannot be satisfied.
    assert client.get(f"/v2/example/hello/blobs/{digest}", headers={"Range": "bytes=0-9"}).status_code == 307
    unsatisfiable = client.get(f"/v2/example/hello/blobs/{digest}", headers={"Range": f"bytes={len(content)}-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.json()["errors"][0]["code"] == "RANGE_INVALID"


def test_head_and_conditional_requests_answer_here(client, image):
    digest, content = image
    head = client.head(f"/v2/example/hello/blobs/{digest}")
    assert head.status_code == 200 and not head.has_header("Location")
    assert head["Content-Length"] == str(len(content)) and head["Docker-Content-Digest"] == digest
    held = client.get(f"/v2/example/hello/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'})
    assert held.status_code == 304 and not held.has_header("Location")


def test_only_what_the_caller_may_read_is_redirected(client, anonymous_client, image, settings):
    digest, _ = image
    # A blob under a repository that does not use it, and a repository nobody published.
    assert client.get(f"/v2/example/other/blobs/{digest}").status_code == 404
    settings.ANONYMOUS_READS = False
    refused = anonymous_client.get(f"/v2/example/hello/blobs/{digest}")
    assert refused.status_code == 401 and not refused.has_header("Location")


def test_redirects_can_be_switched_off(client, image, settings):
    digest, content = image
    settings.S3_REDIRECT_DOWNLOADS = False
    response = client.get(f"/v2/example/hello/blobs/{digest}")
    assert response.status_code == 200 and b"".join(response.streaming_content) == content


def test_a_resource_redirect_keeps_its_file_name_and_type(client, asset, settings, s3_storage):
    path, digest, content = asset
    location = presigned(client.get(path), settings, s3_storage.endpoint_url)
    fetched = requests.get(location, timeout=30)
    assert fetched.status_code == 200 and fetched.content == content
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="hello-1.0.tgz"'
    assert fetched.headers["Content-Type"] == "application/x-tar"
    head = client.head(path)
    assert head.status_code == 200 and head["Content-Length"] == str(ASSET_SIZE) and head["ETag"] == f'"{digest}"'


def test_presigned_urls_name_the_public_endpoint(client, asset, settings, s3_storage):
    path, _, content = asset
    # Clients reach S3 under another name than the registry does (here: localhost for 127.0.0.1).
    public = s3_storage.endpoint_url.replace("127.0.0.1", "localhost")
    assert public != s3_storage.endpoint_url
    settings.S3_PUBLIC_ENDPOINT_URL = public
    blob_store.cache_clear()
    location = presigned(client.get(path), settings, public)
    assert requests.get(location, timeout=30).content == content


# Real clients against a live server of this registry on S3.

def test_a_mesos_fetcher_style_client_follows_the_redirect(asset, live_server):
    path, _, content = asset
    with urllib.request.urlopen(f"{live_server.url}{path}", timeout=30) as response:
        assert response.status == 200 and response.read() == content
        assert urlsplit(response.url).netloc != urlsplit(live_server.url).netloc  # from S3, not from us


@pytest.mark.docker
def test_dockerd_pulls_through_the_redirects_and_runs_the_image(docker_client, client, tmp_path, live_server,
                                                                 s3_registry):
    host, digest = serve_busybox(client, tmp_path / "bundle", live_server, "example/busybox:1.36")
    pull_and_run(docker_client, f"{host}/example/busybox@{digest}")


@pytest.mark.docker
def test_skopeo_copies_through_the_redirects(client, tmp_path, live_server, s3_registry, skopeo):
    host, digest = serve_busybox(client, tmp_path / "bundle", live_server, "example/busybox:1.36")
    layout = tmp_path / "copy"
    skopeo("copy", "--src-tls-verify=false", f"docker://{host}/example/busybox:1.36", f"oci:{layout}:1.36")
    assert sha256(skopeo("inspect", "--raw", f"oci:{layout}:1.36")) == digest
