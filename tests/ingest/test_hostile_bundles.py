"""The hostile-bundle corpus, through the upload API: every bad bundle fails its job with its own
error code, and the registry is exactly as before (no version, row, blob or staging file more)."""

from __future__ import annotations

import base64
import json
import os
import stat
import warnings
import zipfile

import pytest
from django.conf import settings

from blobs.models import Blob
from blobs.store import blob_store
from dcos_bundle.documents import MAX_JSON_BYTES
from dcos_bundle.format import (
    BUNDLE_MEDIA_TYPE,
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    OCI_INDEX_MEMBER,
    asset_member,
    image_blob_member,
)
from ingest.models import ArrivedLayer, IngestJob, JobBlob
from packages_app.models import Package, PackageVersion, VersionBlob
from tests.bundles import AssetSpec, make_bundle
from tests.hostile import (
    CENTRAL_FLAGS,
    CENTRAL_METHOD,
    LOCAL_FLAGS,
    LOCAL_METHOD,
    RAW,
    directory_offset,
    header_offsets,
    nested_arrays,
    patched,
    patched_in_both,
    random_whitespace,
    read_json,
    rechain_image,
    renamed,
    rewrite,
    tar_bytes,
    unix_member,
    with_documents_changed,
    with_raw_json,
    zip_bytes,
)

pytestmark = pytest.mark.usefixtures("registry")


def snapshot() -> dict:
    return {
        "packages": Package.objects.count(),
        "versions": PackageVersion.objects.count(),
        "version_blobs": VersionBlob.objects.count(),
        "blob_rows": sorted(Blob.objects.values_list("digest", flat=True)),
        "stored": sorted(blob.digest for blob in blob_store().iter_blobs()),
        "claims": JobBlob.objects.count() + ArrivedLayer.objects.count(),
        "staged": sorted(str(path) for path in settings.STAGING_DIR.rglob("*") if path.is_file()),
    }


def with_bytes(tmp_path, data: bytes):
    path = tmp_path / "hostile.dcos"
    path.write_bytes(data)
    return path


def first_layer(valid) -> str:
    return image_blob_member(valid.layers["example/hello:1.0.0"][0].digest)


def flipped(valid, member: str) -> dict:
    with zipfile.ZipFile(valid.path) as archive:
        data = bytearray(archive.read(member))
    data[len(data) // 2] ^= 0xFF
    return {member: bytes(data)}


def metadata_changed(valid, change) -> dict:
    metadata = json.loads(json.dumps(valid.metadata))
    change(metadata)
    return {METADATA_MEMBER: json.dumps(metadata).encode()}


def template(text: str):
    def change(metadata):
        metadata["marathon"]["v2AppMustacheTemplate"] = base64.b64encode(text.encode()).decode()
    return change


def metadata_with_raw(valid, change, raw: str) -> dict:
    """metadata.json with ``change`` made, the ``RAW`` value it placed written as ``raw``."""
    metadata = json.loads(json.dumps(valid.metadata))
    change(metadata)
    return {METADATA_MEMBER: with_raw_json(metadata, raw)}


def config_default(metadata, value) -> None:
    metadata["config"]["properties"]["service"]["properties"]["extra"] = {"default": value}


def package_renamed(valid, target, **package):
    """The package's name or version changed in metadata.json and manifest.json alike."""
    return with_documents_changed(valid.path, target, lambda metadata: metadata.update(package),
                                  lambda manifest: manifest["package"].update(package))


def asset_url_changed(valid, target, url: str):
    def in_metadata(metadata):
        metadata["resource"]["assets"]["uris"]["payload"] = url

    def in_manifest(manifest):
        manifest["assets"][0]["url"] = url

    return with_documents_changed(valid.path, target, in_metadata, in_manifest)


def image_reference_changed(valid, target, reference: str):
    def in_metadata(metadata):
        metadata["resource"]["assets"]["container"]["docker"]["server"] = reference

    def in_manifest(manifest):
        manifest["images"][0]["reference"] = reference

    def in_index(index):
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = reference

    return with_documents_changed(valid.path, target, in_metadata, in_manifest, in_index)


def manifest_json_changed(valid, target, change):
    manifest = read_json(valid.path, MANIFEST_MEMBER)
    change(manifest)
    return rewrite(valid.path, target, {MANIFEST_MEMBER: json.dumps(manifest).encode()})


def member_name_with_nul(valid, target):
    """A member whose name holds a NUL byte (zipfile cuts names at NUL, so it is patched in)."""
    written = rewrite(valid.path, target, {}, [("assets/nul-X-name", b"x")])
    return with_bytes(target.parent, renamed(written.read_bytes(), b"assets/nul-X-name", b"assets/nul-\0-name"))


def bomb():
    info = zipfile.ZipInfo("assets/sha256/" + "0" * 64)
    return info, b"\0" * (8 * 1024 * 1024)


def valid_bytes(valid) -> bytes:
    return valid.path.read_bytes()


def local_part(data: bytes) -> bytes:
    """A ZIP's members without its central directory and end record."""
    return data[:directory_offset(data)]


def patch_first_member(valid, local_field, central_field, value) -> bytes:
    return patched_in_both(valid_bytes(valid), 0, local_field, central_field, "<H", value)


CASES = {
    "path-traversal": ("unsafe_member_name", lambda v, t: rewrite(v.path, t, {}, [("../evil.sh", b"x")])),
    "absolute-path": ("unsafe_member_name", lambda v, t: rewrite(v.path, t, {}, [("/etc/cron.d/evil", b"x")])),
    "symlink-member": ("unsafe_member_type", lambda v, t: rewrite(
        v.path, t, {}, [unix_member("assets/link", stat.S_IFLNK | 0o777, b"/etc/passwd")])),
    "zip-bomb-by-ratio": ("zip_bomb", lambda v, t: rewrite(v.path, t, {}, [bomb()])),
    "oversized-member": ("member_too_large", lambda v, t: v.path),
    "too-many-members": ("too_many_members", lambda v, t: v.path),
    "duplicate-names": ("duplicate_member", lambda v, t: rewrite(v.path, t, {}, [(METADATA_MEMBER, b"{}")])),
    "header-mismatch": ("zip_header_mismatch", lambda v, t: with_bytes(t.parent, patched(
        valid_bytes(v), (header_offsets(valid_bytes(v))[0][0] + LOCAL_METHOD, "<H", 0)))),
    # Data before the members: a prefix that starts like a ZIP passes the upload's first-bytes check, inspect
    # finds it; any other prefix is refused by those first bytes.
    "polyglot": ("zip_polyglot", lambda v, t: with_bytes(t.parent, local_part(zip_bytes(("decoy", b"x")))
                                                         + valid_bytes(v))),
    "tar-polyglot": ("not_a_zip", lambda v, t: with_bytes(t.parent, tar_bytes() + valid_bytes(v))),
    "trailing-tar": ("zip_trailing_data", lambda v, t: with_bytes(t.parent, valid_bytes(v) + tar_bytes())),
    "truncated": ("truncated_zip", lambda v, t: with_bytes(t.parent, valid_bytes(v)[: len(valid_bytes(v)) // 2])),
    "not-a-zip": ("not_a_zip", lambda v, t: with_bytes(t.parent, os.urandom(4096))),
    "empty-file": ("empty_bundle", lambda v, t: with_bytes(t.parent, b"")),
    "empty-zip": ("empty_bundle", lambda v, t: with_bytes(t.parent, zip_bytes())),
    "encrypted-member": ("encrypted_member", lambda v, t: with_bytes(t.parent, patch_first_member(
        v, LOCAL_FLAGS, CENTRAL_FLAGS, 1))),
    "unknown-compression": ("unsupported_compression", lambda v, t: with_bytes(t.parent, patch_first_member(
        v, LOCAL_METHOD, CENTRAL_METHOD, 99))),
    "missing-metadata": ("metadata_missing", lambda v, t: rewrite(v.path, t, {METADATA_MEMBER: None})),
    "invalid-metadata-json": ("invalid_json", lambda v, t: rewrite(v.path, t, {METADATA_MEMBER: b"{not json"})),
    "schema-violation": ("invalid_metadata", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, lambda m: m.update(version="1.0 beta")))),
    "template-does-not-render": ("template_render_failed", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, template('{"id": "{{#service}}x"}')))),
    "template-renders-invalid-json": ("template_invalid_json", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, template('{"id": {{service.name}} }')))),
    "layer-digest-mismatch": ("digest_mismatch", lambda v, t: rewrite(v.path, t, flipped(v, first_layer(v)))),
    "wrong-size": ("size_mismatch", lambda v, t: rewrite(v.path, t, {MANIFEST_MEMBER: json.dumps(
        {**read_json(v.path, MANIFEST_MEMBER), "assets": [{**read_json(v.path, MANIFEST_MEMBER)["assets"][0],
                                                           "size": 12}]}).encode()})),
    "diff-id-mismatch": ("diff_id_mismatch", lambda v, t: rechain_image(
        v.path, t, config=lambda config: config["rootfs"]["diff_ids"].__setitem__(0, "sha256:" + "0" * 64))),
    "corrupt-gzip-layer": ("layer_corrupt", lambda v, t: rechain_image(
        v.path, t, layers=lambda layers: [b"\x1f\x8b\x08\x00" + os.urandom(5000)] + layers[1:])),
    "truncated-gzip-layer": ("layer_corrupt", lambda v, t: rechain_image(
        v.path, t, layers=lambda layers: [layers[0][: len(layers[0]) // 2]] + layers[1:])),
    "missing-blob": ("member_missing", lambda v, t: rewrite(v.path, t, {first_layer(v): None})),
    "missing-image-index": ("image_index_missing", lambda v, t: rewrite(v.path, t, {OCI_INDEX_MEMBER: None})),
    "asset-digest-mismatch": ("digest_mismatch", lambda v, t: rewrite(
        v.path, t, flipped(v, asset_member(v.manifest.assets[0].digest)))),
    "nul-in-member-name": ("unsafe_member_name", member_name_with_nul),
    # Documents that Python's json reads, but that are no JSON the registry can keep and serve.
    "huge-integer-in-metadata": ("json_number_too_large", lambda v, t: rewrite(v.path, t, metadata_with_raw(
        v, lambda m: m.update(lastUpdated=RAW), "1" * 5000))),
    "deeply-nested-metadata": ("json_too_deep", lambda v, t: rewrite(v.path, t, metadata_with_raw(
        v, lambda m: config_default(m, RAW), nested_arrays(5000)))),
    "nan-in-metadata": ("invalid_json", lambda v, t: rewrite(v.path, t, metadata_with_raw(
        v, lambda m: config_default(m, RAW), "NaN"))),
    "nul-in-description": ("unsupported_character", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, lambda m: m.update(description="nul \0 here")))),
    "lone-surrogate-in-tag": ("unsupported_character", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, lambda m: m.update(tags=["\ud800"])))),
    "asset-file-name-not-a-string": ("invalid_manifest", lambda v, t: manifest_json_changed(
        v, t, lambda m: m["assets"][0].update(fileName=5))),
    # Values longer than the catalogue keeps.
    "package-name-too-long": ("field_too_long", lambda v, t: package_renamed(v, t, name="p" * 300)),
    "version-too-long": ("field_too_long", lambda v, t: package_renamed(v, t, version="1" * 300)),
    "min-dcos-release-too-long": ("field_too_long", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, lambda m: m.update(minDcosReleaseVersion="1." + "1" * 39)))),
    "asset-url-too-long": ("field_too_long", lambda v, t: asset_url_changed(
        v, t, "https://downloads.example.invalid/" + "a" * 2000)),
    "image-reference-too-long": ("field_too_long", lambda v, t: image_reference_changed(
        v, t, "example/" + "a" * 1100 + ":1.0.0")),
    # Image documents.
    "layer-size-out-of-range": ("invalid_descriptor", lambda v, t: rechain_image(
        v.path, t, manifest_change=lambda m: m["layers"][0].update(size=2**70))),
    "descriptor-without-digest": ("invalid_descriptor", lambda v, t: rechain_image(
        v.path, t, manifest_change=lambda m: m["layers"][0].pop("digest"))),
    "sha512-config-digest": ("unsupported_digest", lambda v, t: rechain_image(
        v.path, t, manifest_change=lambda m: m["config"].update(digest="sha512:" + "ab" * 64))),
    "diff-id-too-long": ("invalid_diff_id", lambda v, t: rechain_image(
        v.path, t, config=lambda config: config["rootfs"]["diff_ids"].__setitem__(0, "sha256:" + "0" * 193))),
    "config-larger-than-json-cap": ("member_too_large", lambda v, t: rechain_image(
        v.path, t, config_bytes=lambda data: data + random_whitespace(MAX_JSON_BYTES))),
    "index-entry-not-an-object": ("invalid_image", lambda v, t: rewrite(v.path, t, {OCI_INDEX_MEMBER: json.dumps(
        {**read_json(v.path, OCI_INDEX_MEMBER), "manifests": [42]}).encode()})),
    # Templates: partials would read files of the worker; none is ever rendered.
    "template-partial-traversal": ("template_partial", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, template('{"id": "{{> ../../../../../../../etc/passwd}}"}')))),
    "template-partial-nul": ("template_partial", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, template('{"id": "{{> a\0b}}"}')))),
    "template-renders-huge-number": ("json_number_too_large", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, template('{"id": "x", "cpus": ' + "9" * 5000 + "}")))),
    "template-sections-multiply": ("template_render_failed", lambda v, t: rewrite(v.path, t, metadata_changed(
        v, lambda m: (config_default(m, list(range(100))),
                      template('{"id": "' + "{{#service.extra}}" * 6 + "x" + "{{/service.extra}}" * 6 + '"}')(m))))),
}
LIMITS = {"oversized-member": {"INGEST_MAX_MEMBER_BYTES": 100_000}, "too-many-members": {"INGEST_MAX_MEMBERS": 3}}


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("valid"), assets=[AssetSpec("payload", "payload.tgz", 150_000, 1)])


def upload(client, path) -> dict:
    """The job of an upload; a bundle refused at the door (an empty one) answers as a failed job would."""
    data = path.read_bytes()
    response = client.post("/api/v1/bundles/", data=data, content_type=BUNDLE_MEDIA_TYPE,
                           CONTENT_LENGTH=str(len(data)))
    if response.status_code == 400:
        return {"state": "failed", "error": response.json(), "id": None}
    assert response.status_code == 202, response.content
    return client.get(response["Location"]).json()


@pytest.mark.parametrize("arrival_min_bytes", [None, 0], ids=["checked-after-upload", "checked-while-arriving"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_hostile_bundle_fails_with_its_code_and_changes_nothing(case, arrival_min_bytes, client, tmp_path, valid,
                                                                settings):
    code, build = CASES[case]
    if arrival_min_bytes is not None:
        # Every layer is handed to a worker as soon as it arrived: the same refusal, nothing more left.
        settings.INGEST_ARRIVAL_MIN_BYTES = arrival_min_bytes
    for name, value in LIMITS.get(case, {}).items():
        setattr(settings, name, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        hostile = build(valid, tmp_path / "hostile.dcos")
    before = snapshot()
    job = upload(client, hostile)
    assert (job["state"], job["error"]["code"]) == ("failed", code), job["error"]
    assert job["error"]["message"]
    assert snapshot() == before
    if job["id"]:
        assert IngestJob.objects.get(pk=job["id"]).finished_at is not None


def test_duplicate_version_with_different_content_conflicts_and_changes_nothing(client, tmp_path, valid):
    assert upload(client, valid.path)["state"] == "succeeded"
    other = make_bundle(tmp_path / "other", assets=[AssetSpec("payload", "payload.tgz", 1000, 7)])
    before = snapshot()
    job = upload(client, other.path)
    assert (job["state"], job["error"]["code"]) == ("failed", "version_conflict")
    assert job["error"]["details"]["package"] == "hello"
    assert snapshot() == before
