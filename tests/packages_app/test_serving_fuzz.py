"""The faces outside the OpenAPI schema (/repo, /clusters/<name>/repo, /resource, /v2) driven with generated
paths, query strings and headers (Range, Accept, If-None-Match, User-Agent, Authorization...) against a
catalogue with a published version, on the suite's database (PostgreSQL, which refuses NUL in text): no
answer is a 5xx, and no request raises. Requests once answered with a 500 are checked one by one first.

Bounded and derandomised: the same few hundred requests on every run, in well under a minute.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access.clusters import save_cluster
from access.models import Cluster
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from packages_app.coordinates import package_coordinate
from tests.actors import TEST_ACTOR
from tests.bundles import AssetSpec, ImageSpec, make_bundle

pytestmark = pytest.mark.usefixtures("registry")

REQUESTS = 600
THOUSANDS_OF_DIGITS = "9" * 5000

# Header values are latin-1 in WSGI; CR and LF cannot occur in one.
header_text = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=30)
huge_number = st.integers(min_value=20, max_value=5000).map(lambda digits: "9" * digits)
numbers = st.one_of(st.integers(min_value=0, max_value=400_000).map(str), huge_number, st.just(""))
any_text = st.one_of(st.text(max_size=20), st.sampled_from(["\0", "a\0b", "%00", "..", "/", " ", "é", "9" * 5000]))


def mostly(*valid: str):
    """One of the valid values three times in four, anything else otherwise."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(valid), any_text)


def segment(*valid: str, safe: str = ":"):
    return mostly(*valid).map(lambda text: quote(text, safe=safe))


def published(client, tmp_path) -> dict:
    built = make_bundle(tmp_path / "hello", assets=[AssetSpec("payload", "hello-1.0.tgz", 300_000, 3)],
                        images=[ImageSpec("server", "example/hello:1.0.0", [200_000, 3000])])
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    save_cluster(Cluster(), {"name": "prod", "sees_all_packages": False,
                             "rules": [{"package_name": "hello", "versions": "1.*"}]}, TEST_ACTOR)
    layers = built.layers["example/hello:1.0.0"]
    return {
        "coordinate": package_coordinate("hello", "1.0.0"),
        "asset": built.manifest.assets[0].digest,
        "asset_size": built.manifest.assets[0].size,
        "manifest": built.manifest.images[0].manifest_digest,
        "layer": layers[0].digest,
        "layer_size": layers[0].size,
    }


def requests(known: dict):
    other_digests = ("sha256:" + "0" * 64, "sha512:" + "ab" * 64, known["asset"], known["layer"], known["manifest"])
    path = st.one_of(
        st.just("/repo"),
        st.builds("/clusters/{}/repo".format, segment("prod", "prod", "other")),
        st.builds("/resource/{}/{}/{}".format,
                  segment(known["coordinate"], known["coordinate"], package_coordinate("hello\0", "1.0.0"),
                          package_coordinate("\ud800", "1"), package_coordinate("x" * 300, "1")),
                  segment(known["asset"], known["asset"], *other_digests), segment("hello-1.0.tgz")),
        st.sampled_from(["/v2/", "/v2", "/v2/_catalog", "/v2/token"]),
        st.builds("/v2/{}/tags/list".format, segment("example/hello", "example/hello", "a" * 300, safe="/:")),
        st.builds("/v2/{}/manifests/{}".format, segment("example/hello", safe="/:"),
                  segment(known["manifest"], "1.0.0", *other_digests)),
        st.builds("/v2/{}/blobs/{}".format, segment("example/hello", safe="/:"),
                  segment(known["layer"], known["layer"], *other_digests)),
        st.builds("/v2/{}/{}".format, segment("example/hello", safe="/:"), segment("blobs/uploads/", "tags/")),
    )
    query = st.dictionaries(st.sampled_from(["n", "last", "cluster", "page", "x\0"]),
                            st.one_of(numbers, any_text), max_size=3).map(urlencode)
    headers = st.fixed_dictionaries({}, optional={
        "Range": st.one_of(st.builds("bytes={}-{}".format, numbers, numbers), st.builds("bytes=-{}".format, numbers),
                           header_text),
        "Accept": st.one_of(
            st.sampled_from(["application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4", "*/*",
                             "application/vnd.dcos.universe.repo+json;version=v5;q=0.5, */*;q=0.1",
                             "application/vnd.oci.image.manifest.v1+json"]),
            st.builds("application/vnd.dcos.universe.repo+json;q={}".format, st.one_of(numbers, header_text)),
            header_text),
        "Accept-Encoding": st.one_of(st.sampled_from(["gzip", "gzip;q=0", "*;q=1e999", "br"]), header_text),
        "If-None-Match": st.one_of(st.builds('"{}"'.format, st.sampled_from(other_digests)), st.just("*"), header_text),
        "User-Agent": st.one_of(st.builds("cosmos/0.7 dcos/{}.{}".format, numbers, numbers), header_text),
        "Authorization": st.one_of(st.builds("Bearer {}".format, header_text),
                                   st.builds("Basic {}".format, header_text), header_text),
    })
    method = st.sampled_from(["GET", "GET", "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    return st.tuples(method, path, query, headers)


def test_no_request_to_the_serving_faces_answers_a_server_error(client, tmp_path):
    known = published(client, tmp_path)

    @given(request=requests(known))
    @settings(max_examples=REQUESTS, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_without_a_server_error(request):
        method, path, query, headers = request
        response = client.generic(method, path + (f"?{query}" if query else ""), headers=headers)
        # Streamed bodies are read too: a range is served while it streams.
        content = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code < 500, (method, path, query, headers, response.status_code, content[:300])

    answers_without_a_server_error()


@pytest.mark.parametrize("face", ["resource", "v2"])
@pytest.mark.parametrize("header, status, served", [
    (f"bytes={THOUSANDS_OF_DIGITS}-", 416, None),
    (f"bytes=0-{THOUSANDS_OF_DIGITS}", 206, (0, None)),
    (f"bytes=-{THOUSANDS_OF_DIGITS}", 206, (0, None)),
    (f"bytes=10-{THOUSANDS_OF_DIGITS}", 206, (10, None)),
    (f"bytes=000000000000000000000000000001-2", 206, (1, 3)),
])
def test_ranges_of_thousands_of_digits_are_positions_past_the_end(client, tmp_path, face, header, status, served):
    known = published(client, tmp_path)
    if face == "resource":
        path, size = f"/resource/{known['coordinate']}/{known['asset']}/hello-1.0.tgz", known["asset_size"]
    else:
        path, size = f"/v2/example/hello/blobs/{known['layer']}", known["layer_size"]
    whole = b"".join(client.get(path).streaming_content)
    response = client.get(path, headers={"Range": header})
    assert response.status_code == status
    if served:
        start, end = served
        assert b"".join(response.streaming_content) == whole[start:end]
    else:
        assert response["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("name, version", [("hello\0", "1.0.0"), ("hello", "1.0.0\0"), ("\ud800", "1"), ("h", 1)])
def test_a_coordinate_naming_what_no_package_can_be_named_is_unknown(client, tmp_path, name, version):
    known = published(client, tmp_path)
    coordinate = package_coordinate(name, version)
    response = client.get(f"/resource/{coordinate}/{known['asset']}/hello-1.0.tgz")
    assert (response.status_code, response.json()["code"]) == (404, "resource_not_found")


def test_a_dcos_version_of_thousands_of_digits_is_no_dcos_version(client, tmp_path):
    published(client, tmp_path)
    for user_agent in (f"cosmos/0.7 dcos/{THOUSANDS_OF_DIGITS}", f"cosmos/0.7 dcos/1.{THOUSANDS_OF_DIGITS}"):
        response = client.get("/repo", headers={"User-Agent": user_agent})
        assert response.status_code == 200
        assert response["Content-Type"].endswith("version=v5")
