"""Asset downloads at /resource/...: streamed, ranged, cacheable, with the original file name."""

from __future__ import annotations

import pytest

from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from packages_app.coordinates import package_coordinate
from tests.bundles import AssetSpec, make_bundle
from tests.streams import PatternStream

pytestmark = pytest.mark.usefixtures("registry")
SIZE = 300_000


@pytest.fixture
def asset(client, tmp_path):
    built = make_bundle(tmp_path / "b", assets=[AssetSpec("payload", "hello-1.0.tgz", SIZE, 3)], images=[])
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    entry = built.manifest.assets[0]
    return {"path": f"/resource/{package_coordinate('hello', '1.0.0')}/{entry.digest}/hello-1.0.tgz",
            "digest": entry.digest, "content": PatternStream(SIZE, 3).readall()}


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_download_streams_the_whole_file_with_its_headers(client, asset):
    response = client.get(asset["path"])
    assert response.status_code == 200
    assert body(response) == asset["content"]
    assert response["Content-Length"] == str(SIZE)
    assert response["Content-Type"] == "application/x-tar"
    assert response["ETag"] == f'"{asset["digest"]}"'
    assert response["Content-Disposition"] == 'attachment; filename="hello-1.0.tgz"'
    assert response["Accept-Ranges"] == "bytes"


def test_head_answers_headers_only(client, asset):
    response = client.head(asset["path"])
    assert response.status_code == 200 and response["Content-Length"] == str(SIZE)
    assert response.content == b""


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-99", 0, 99), ("bytes=1000-", 1000, SIZE - 1), ("bytes=-500", SIZE - 500, SIZE - 1),
    (f"bytes=299990-{SIZE + 50}", 299990, SIZE - 1),
])
def test_ranges(client, asset, header, start, end):
    response = client.get(asset["path"], headers={"Range": header})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert body(response) == asset["content"][start:end + 1]


def test_unsatisfiable_range(client, asset):
    response = client.get(asset["path"], headers={"Range": f"bytes={SIZE}-"})
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("if_none_match", [
    '"{digest}"', 'W/"{digest}"', '"other", "{digest}"', '"other",W/"{digest}"', "*",
])
@pytest.mark.parametrize("method", ["get", "head"])
def test_if_none_match_naming_the_asset_gives_304(client, asset, if_none_match, method):
    header = if_none_match.format(digest=asset["digest"])
    response = getattr(client, method)(asset["path"], headers={"If-None-Match": header, "Range": "bytes=0-9"})
    assert response.status_code == 304 and response.content == b""
    assert response["ETag"] == f'"{asset["digest"]}"'
    assert response["Content-Disposition"] == 'attachment; filename="hello-1.0.tgz"'
    assert "Content-Type" not in response


@pytest.mark.parametrize("headers", [
    {"If-None-Match": '"sha256:' + "0" * 64 + '"'},
    {"If-None-Match": '"other", W/"another"'},
    # No Last-Modified is served: a date alone never makes a 304.
    {"If-Modified-Since": "Sat, 01 Jan 2100 00:00:00 GMT"},
])
def test_other_conditions_get_the_asset(client, asset, headers):
    response = client.get(asset["path"], headers=headers)
    assert response.status_code == 200 and body(response) == asset["content"]


def test_a_failed_if_match_is_412(client, asset):
    assert client.get(asset["path"], headers={"If-Match": f'"{asset["digest"]}"'}).status_code == 200
    assert client.get(asset["path"], headers={"If-Match": "*"}).status_code == 200
    refused = client.get(asset["path"], headers={"If-Match": '"other"'})
    assert refused.status_code == 412 and refused["ETag"] == f'"{asset["digest"]}"'


@pytest.mark.parametrize("mangle", [
    lambda path: path.replace("/resource/", "/resource/notacoordinate"),
    lambda path: path.replace(package_coordinate("hello", "1.0.0"), package_coordinate("hello", "2.0.0")),
    lambda path: path.rsplit("/", 2)[0] + "/sha256:" + "0" * 64 + "/hello-1.0.tgz",
])
def test_unknown_coordinate_or_digest_is_a_clear_404(client, asset, mangle):
    response = client.get(mangle(asset["path"]))
    assert response.status_code == 404
    assert response.json()["code"] == "resource_not_found" and response.json()["message"]


def test_writes_are_refused(client, asset):
    assert client.post(asset["path"]).status_code == 405
