"""Writing and reading bundles: layout, compression, digests, atomicity, metadata-only bundles, and the
reader's refusals: documents over the JSON cap, malformed descriptors and manifest.json fields."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
import zipfile

import pytest

from dcos_bundle.documents import MAX_JSON_BYTES
from dcos_bundle.errors import RegistryError
from dcos_bundle.format import (
    MANIFEST_MEMBER,
    MAX_BLOB_SIZE,
    METADATA_MEMBER,
    OCI_INDEX_MEMBER,
    OCI_LAYOUT_MEMBER,
    REF_NAME_ANNOTATION,
    Manifest,
    asset_member,
    image_blob_member,
)
from dcos_bundle.oci import ImageSet, spool_layer
from dcos_bundle.reader import BundleReader, parse_descriptor
from dcos_bundle.writer import BundleExists, BundleWriter
from tests.bundles import AssetSpec, ImageSpec, image_config, make_bundle, make_layer, tar_stream
from tests.hostile import random_whitespace, rechain_image
from tests.streams import sha256_digest

MiB = 1024 * 1024


def test_bundle_layout_and_compression(tmp_path):
    built = make_bundle(tmp_path)
    assert built.path.name == "hello-1.0.0.dcos"
    with zipfile.ZipFile(built.path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        assert archive.testzip() is None
    layer_digests = [layer.digest for layer in built.layers["example/hello:1.0.0"]]
    asset = built.manifest.assets[0]
    for name in (METADATA_MEMBER, MANIFEST_MEMBER, OCI_LAYOUT_MEMBER, OCI_INDEX_MEMBER):
        assert infos[name].compress_type == zipfile.ZIP_DEFLATED, name
    for digest in layer_digests:
        assert infos[image_blob_member(digest)].compress_type == zipfile.ZIP_STORED
    assert infos[asset_member(asset.digest)].compress_type == zipfile.ZIP_STORED
    assert infos[asset_member(asset.digest)].file_size == asset.size


def test_reader_streams_back_every_digest(tmp_path):
    built = make_bundle(tmp_path, images=[
        ImageSpec("server", "example/hello:1.0.0", [300 * 1024, 10]),
        ImageSpec("sidecar", "registry.example.invalid:5000/team/sidecar:2", [50 * 1024], seed=1),
    ])
    with BundleReader(built.path) as reader:
        assert reader.metadata() == built.metadata
        assert reader.manifest() == built.manifest
        summary = reader.verify()
        images = {reference: blobs for reference, _, blobs in reader.image_blobs()}
    assert summary["assets"] == 1 and summary["images"] == 2 and summary["image_blobs"] == 5
    sidecar = images["registry.example.invalid:5000/team/sidecar:2"]
    assert [blob.digest for blob in sidecar[1:]] == [
        layer.digest for layer in built.layers["registry.example.invalid:5000/team/sidecar:2"]
    ]


def test_oci_index_names_each_image_by_its_original_reference(tmp_path):
    built = make_bundle(tmp_path)
    with BundleReader(built.path) as reader:
        index = reader.oci_index()
        [entry] = index["manifests"]
        assert entry["annotations"][REF_NAME_ANNOTATION] == "example/hello:1.0.0"
        assert entry["digest"] == built.manifest.images[0].manifest_digest
        assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
        with reader.open(image_blob_member(entry["digest"])) as stream:
            raw = stream.read()
    assert sha256_digest(raw) == entry["digest"]
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar+gzip"] * 2


def test_layers_decompress_to_their_diff_ids(tmp_path):
    layer = make_layer(tmp_path, 2 * MiB, seed=4)
    with gzip.open(layer.path) as stream:
        uncompressed = stream.read()
    assert sha256_digest(uncompressed) == layer.diff_id
    assert sha256_digest(layer.path.read_bytes()) == layer.digest
    assert layer.size == layer.path.stat().st_size


def test_spooling_gzip_content_keeps_it_and_computes_the_diff_id(tmp_path):
    tar = tar_stream([("a", 100_000, 1)]).read()
    # Two concatenated gzip members decompress as one stream, as gunzip does.
    compressed = gzip.compress(tar[:70_000]) + gzip.compress(tar[70_000:])
    layer = spool_layer(io.BytesIO(compressed), tmp_path)
    assert layer.digest == sha256_digest(compressed)
    assert layer.diff_id == sha256_digest(tar)
    assert layer.path.read_bytes() == compressed


def test_an_image_whose_config_disagrees_with_its_layers_is_refused(tmp_path):
    layer = make_layer(tmp_path, 1000, seed=1)
    config = image_config([layer])
    config["rootfs"]["diff_ids"] = [sha256_digest(b"other")]
    with pytest.raises(ValueError, match="diff_ids"):
        ImageSet().add_image("example/x:1", config, [layer])


def test_tampered_asset_is_caught_with_its_member_named(tmp_path):
    built = make_bundle(tmp_path)
    asset = built.manifest.assets[0]
    tampered = tmp_path / "tampered.dcos"
    with zipfile.ZipFile(built.path) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == asset_member(asset.digest):
                data = b"X" + data[1:]
            target.writestr(info, data)
    with BundleReader(tampered) as reader, pytest.raises(RegistryError) as caught:
        reader.verify()
    assert caught.value.code == "digest_mismatch"
    assert caught.value.details["member"] == asset_member(asset.digest)


def test_metadata_only_bundles_are_accepted(tmp_path):
    metadata = {"packagingVersion": "3.0", "name": "old", "version": "1", "maintainer": "m",
                "description": "d", "tags": []}
    path = tmp_path / "old-1.dcos"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_MEMBER, json.dumps(metadata))
    with BundleReader(path) as reader:
        assert reader.metadata() == metadata
        assert reader.manifest() is None
        assert reader.oci_index() is None
        assert reader.verify() == {"assets": 0, "images": 0, "image_blobs": 0, "bytes": 0}


@pytest.mark.parametrize(
    "content, code",
    [(b"not a zip at all", "not_a_zip"), (None, "metadata_missing"), (b"{broken", "invalid_json"), (b"[1]", "invalid_metadata")],
)
def test_reader_errors_are_specific(tmp_path, content, code):
    path = tmp_path / "bad.dcos"
    if content == b"not a zip at all":
        path.write_bytes(content)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("other.txt", "x")
            if content is not None:
                archive.writestr(METADATA_MEMBER, content)
    with pytest.raises(RegistryError) as caught:
        with BundleReader(path) as reader:
            reader.metadata()
    assert caught.value.code == code


def test_writer_never_leaves_a_partial_bundle(tmp_path):
    target = tmp_path / "x-1.dcos"
    with pytest.raises(RuntimeError):
        with BundleWriter(target) as writer:
            writer.write_json(METADATA_MEMBER, {"name": "x"})
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_to_overwrite_even_a_bundle_that_appears_meanwhile(tmp_path):
    target = tmp_path / "x-1.dcos"
    with BundleWriter(target) as writer:
        writer.write_json(METADATA_MEMBER, {"name": "x"})
        target.write_bytes(b"someone else's bundle")
        with pytest.raises(BundleExists):
            writer.commit()
    assert target.read_bytes() == b"someone else's bundle"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(BundleExists):
        BundleWriter(target)


def test_same_inputs_give_identical_bundles(tmp_path):
    first = make_bundle(tmp_path / "a")
    second = make_bundle(tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()


def test_large_bundle_is_written_and_verified_in_bounded_memory(tmp_path):
    tracemalloc.start()
    try:
        built = make_bundle(
            tmp_path,
            assets=[AssetSpec("payload", "payload.bin", 24 * MiB, 3)],
            images=[ImageSpec("server", "example/big:1", [40 * MiB, 8 * MiB])],
        )
        with BundleReader(built.path) as reader:
            summary = reader.verify()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["bytes"] > 70 * MiB
    assert peak < 16 * MiB, peak
    assert built.path.stat().st_size > 70 * MiB


def test_an_image_document_over_the_json_cap_is_refused_unread(tmp_path):
    built = make_bundle(tmp_path / "valid")
    hostile = rechain_image(built.path, tmp_path / "hostile.dcos",
                            config_bytes=lambda data: data + random_whitespace(MAX_JSON_BYTES))
    with BundleReader(hostile) as reader:
        [(reference, _, blobs)] = list(reader.image_blobs())
        tracemalloc.start()
        try:
            with pytest.raises(RegistryError) as caught:
                reader.read_image_json(blobs[0], f"The config of image {reference}")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert caught.value.code == "member_too_large"
    assert caught.value.details["size"] > MAX_JSON_BYTES
    assert peak < MiB, peak


@pytest.mark.parametrize("descriptor, code", [
    ("sha256:" + "0" * 64, "invalid_descriptor"),
    ({"size": 1, "mediaType": "x"}, "invalid_descriptor"),
    ({"digest": None, "size": 1}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 63, "size": 1}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 64 + "\n", "size": 1}, "invalid_descriptor"),
    ({"digest": "sha256:" + "A" * 64, "size": 1}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 193, "size": 1}, "invalid_descriptor"),
    ({"digest": "sha512:" + "ab" * 64, "size": 1}, "unsupported_digest"),
    ({"digest": "blake3:" + "ab" * 32, "size": 1}, "unsupported_digest"),
    ({"digest": "sha256:" + "0" * 64, "size": 2**70}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 64, "size": 2**63}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 64, "size": -1}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 64, "size": "1"}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 64, "size": True}, "invalid_descriptor"),
    ({"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": ["x"]}, "invalid_descriptor"),
])
def test_descriptors_are_refused_with_what_is_wrong(descriptor, code):
    with pytest.raises(RegistryError) as caught:
        parse_descriptor(descriptor, "The config descriptor of image x", reference="x")
    assert caught.value.code == code
    assert caught.value.details["reference"] == "x"
    assert len(caught.value.message) < 300


def test_a_descriptor_of_the_largest_size_is_read():
    blob = parse_descriptor({"digest": "sha256:" + "0" * 64, "size": MAX_BLOB_SIZE, "mediaType": "m"}, "d")
    assert (blob.size, blob.media_type) == (MAX_BLOB_SIZE, "m")


def valid_manifest_json() -> dict:
    return {"bundleFormatVersion": 1, "package": {"name": "p", "version": "1"}, "builtBy": {}, "builtAt": "",
            "assets": [{"url": "https://x.invalid/a", "digest": "sha256:" + "0" * 64, "size": 1, "fileName": "a",
                        "usedAt": ["/resource/assets/uris/a"]}],
            "images": [{"reference": "x:1", "manifestDigest": "sha256:" + "1" * 64, "usedAt": []}]}


@pytest.mark.parametrize("change, code, at", [
    (lambda m: m.pop("package"), "invalid_manifest", "/package"),
    (lambda m: m.update(package="p"), "invalid_manifest", "/package"),
    (lambda m: m["package"].update(version=1), "invalid_manifest", "/package/version"),
    (lambda m: m.update(bundleFormatVersion="1"), "invalid_manifest", "/bundleFormatVersion"),
    (lambda m: m.update(assets={}), "invalid_manifest", "/assets"),
    (lambda m: m["assets"].append("a"), "invalid_manifest", "/assets/1"),
    (lambda m: m["assets"][0].update(fileName=5), "invalid_manifest", "/assets/0/fileName"),
    (lambda m: m["assets"][0].update(size=-1), "invalid_manifest", "/assets/0/size"),
    (lambda m: m["assets"][0].update(size=2**64), "invalid_manifest", "/assets/0/size"),
    (lambda m: m["assets"][0].update(usedAt=[1]), "invalid_manifest", "/assets/0/usedAt"),
    (lambda m: m["assets"][0].update(digest="md5:abc"), "unsupported_digest", "/assets/0/digest"),
    (lambda m: m["images"][0].update(reference=["x"]), "invalid_manifest", "/images/0/reference"),
    (lambda m: m["images"][0].update(manifestDigest="sha256:xyz"), "invalid_manifest", "/images/0/manifestDigest"),
])
def test_manifest_json_fields_are_checked_one_by_one(change, code, at):
    manifest = valid_manifest_json()
    change(manifest)
    with pytest.raises(RegistryError) as caught:
        Manifest.from_json(manifest)
    assert (caught.value.code, caught.value.details["at"]) == (code, at)
    assert caught.value.details["member"] == MANIFEST_MEMBER


def test_a_valid_manifest_json_reads_back_as_written():
    assert Manifest.from_json(valid_manifest_json()).to_json() == valid_manifest_json()
