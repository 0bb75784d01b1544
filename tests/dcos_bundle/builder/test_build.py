"""`dcos-registry build`: assets through a mirror, images from the real Docker engine, clear errors."""

from __future__ import annotations

import json
import os
import platform
import stat
import subprocess
import sys
from importlib import metadata as distribution

import pytest

from dcos_bundle.builder.build import build_bundle
from dcos_bundle.errors import RegistryError
from dcos_bundle.reader import BundleReader
from tests.asset_server import content_for, digest_for
from tests.dcos_bundle.definitions import ORIGIN, write_definition
from tests.images import load_image, skopeo_inspect
from tests.processes import PROJECT_DIR
from tests.streams import sha256_digest


def no_docker():
    raise AssertionError("a package without images must not need a Docker engine")


def test_assets_come_through_the_mirror_and_keep_their_original_urls(tmp_path, asset_server):
    uris = {"payload": ORIGIN + "hello/payload-1.0.tgz", "same": ORIGIN + "hello/payload-1.0.tgz",
            "other": ORIGIN + "hello/other.bin"}
    definition = write_definition(tmp_path / "def", uris=uris)
    result = build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)],
                          docker_client_factory=no_docker)
    assert sorted(asset_server.requests) == ["/downloads.example.invalid/hello/other.bin",
                                             "/downloads.example.invalid/hello/payload-1.0.tgz"]
    with BundleReader(result.path) as reader:
        manifest = reader.manifest()
        assert reader.verify()["assets"] == 2
        assert reader.metadata()["resource"]["assets"]["uris"] == uris
    assets = {asset.url: asset for asset in manifest.assets}
    payload = assets[ORIGIN + "hello/payload-1.0.tgz"]
    assert payload.digest == digest_for("/downloads.example.invalid/hello/payload-1.0.tgz")
    assert payload.size == len(content_for("/downloads.example.invalid/hello/payload-1.0.tgz"))
    assert payload.file_name == "payload-1.0.tgz"
    assert payload.used_at == ("/resource/assets/uris/payload", "/resource/assets/uris/same")
    assert (result.assets, result.images) == (2, 0)
    assert result.sha256.startswith("sha256:") and result.size == result.path.stat().st_size


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_the_bundle_has_the_permissions_the_umask_gives(umask, mode, tmp_path, asset_server):
    definition = write_definition(tmp_path / "def", uris={"payload": ORIGIN + "p.tgz"})
    previous = os.umask(umask)
    try:
        result = build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)],
                              docker_client_factory=no_docker)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(result.path.stat().st_mode) == mode


@pytest.mark.docker
def test_images_are_exported_from_the_engine_into_the_bundle(tmp_path, asset_server, docker_client, monkeypatch):
    load_image(docker_client, "registry-test/hello:1.0.0")
    definition = write_definition(tmp_path / "def", uris={"payload": ORIGIN + "p.tgz"},
                                  images={"server": "registry-test/hello:1.0.0"})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)])
    # Exported and compressed again, the image gives the same bytes.
    again = build_bundle(definition, tmp_path / "again", mirrors=[asset_server.mirror_for(ORIGIN)])
    assert again.sha256 == result.sha256
    with BundleReader(result.path) as reader:
        summary = reader.verify()
        [(reference, manifest_blob, blobs)] = list(reader.image_blobs())
        manifest = reader.manifest()
    assert reference == "registry-test/hello:1.0.0"
    assert manifest.images[0].manifest_digest == manifest_blob.digest
    assert manifest.images[0].used_at == ("/resource/assets/container/docker/server",)
    assert summary["images"] == 1 and len(blobs) >= 3
    with BundleReader(result.path) as reader:
        config = reader.read_image_json(blobs[0])
    engine_layers = docker_client.images.get("registry-test/hello:1.0.0").attrs["RootFS"]["Layers"]
    assert config["rootfs"]["diff_ids"] == engine_layers
    # An outside reader of OCI layouts agrees with the bundle's digests.
    raw, inspected = skopeo_inspect(result.path, tmp_path / "unpacked", "registry-test/hello:1.0.0")
    assert sha256_digest(raw) == manifest_blob.digest
    assert inspected["Layers"] == [blob.digest for blob in blobs[1:]]


@pytest.mark.docker
def test_an_image_the_engine_does_not_have_and_cannot_pull_is_named(tmp_path, docker_client):
    definition = write_definition(tmp_path / "def", images={"server": "127.0.0.1:9/no/such-image:1"})
    with pytest.raises(RegistryError) as caught:
        build_bundle(definition, tmp_path / "out")
    assert caught.value.code == "image_not_found"
    assert caught.value.details["reference"] == "127.0.0.1:9/no/such-image:1"
    assert list((tmp_path / "out").iterdir()) == []


def test_existing_bundle_is_refused_before_any_download(tmp_path, asset_server):
    definition = write_definition(tmp_path / "def", uris={"payload": ORIGIN + "p.tgz"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "hello-1.0.0.dcos").write_bytes(b"already built")
    with pytest.raises(RegistryError) as caught:
        build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)])
    assert caught.value.code == "output_exists"
    assert asset_server.requests == []
    assert (tmp_path / "out" / "hello-1.0.0.dcos").read_bytes() == b"already built"


def test_unreachable_asset_names_url_and_status_and_leaves_nothing(tmp_path, asset_server):
    definition = write_definition(tmp_path / "def", uris={"a": ORIGIN + "ok.tgz", "b": ORIGIN + "missing/b.tgz"})
    with pytest.raises(RegistryError) as caught:
        build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)],
                     docker_client_factory=no_docker)
    error = caught.value
    assert (error.code, error.details["status"], error.details["url"]) == (
        "asset_unreachable", 404, ORIGIN + "missing/b.tgz")
    assert "HTTP 404" in error.message and "/missing/b.tgz" in error.message
    assert list((tmp_path / "out").iterdir()) == []


def test_refused_connection_is_an_unreachable_asset(tmp_path):
    definition = write_definition(tmp_path / "def", uris={"a": "http://127.0.0.1:9/a.tgz"})
    with pytest.raises(RegistryError) as caught:
        build_bundle(definition, tmp_path / "out", docker_client_factory=no_docker)
    assert caught.value.code == "asset_unreachable"
    assert "Connection refused" in caught.value.message


def test_invalid_metadata_names_the_field_before_downloading(tmp_path, asset_server):
    definition = write_definition(tmp_path / "def", version="1.0 beta", uris={"a": ORIGIN + "a.tgz"})
    with pytest.raises(RegistryError) as caught:
        build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)])
    assert caught.value.code == "invalid_metadata"
    assert caught.value.details["errors"][0]["path"] == "$.version"
    assert asset_server.requests == []


def cli_binary(path):
    return {"url": ORIGIN + path, "kind": "executable",
            "contentHash": [{"algo": "sha256", "value": digest_for("/downloads.example.invalid/" + path)[7:]}]}


def test_cli_binaries_are_checked_against_their_content_hash(tmp_path, asset_server):
    definition = write_definition(tmp_path / "good", cli=cli_binary("bin/hello"))
    result = build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)],
                          docker_client_factory=no_docker)
    assert result.changed_content_hashes == []

    declared = cli_binary("bin/hello")
    declared["contentHash"][0]["value"] = "0" * 64
    definition = write_definition(tmp_path / "bad", name="changed", cli=declared)
    with pytest.raises(RegistryError) as caught:
        build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)],
                     docker_client_factory=no_docker)
    assert caught.value.code == "asset_content_hash_mismatch"
    assert caught.value.details["url"] == ORIGIN + "bin/hello"

    result = build_bundle(definition, tmp_path / "out", mirrors=[asset_server.mirror_for(ORIGIN)],
                          docker_client_factory=no_docker, accept_changed_content_hashes=True)
    assert result.changed_content_hashes == [ORIGIN + "bin/hello"]
    with BundleReader(result.path) as reader:
        recorded = reader.metadata()["resource"]["cli"]["binaries"]["linux"]["x86-64"]["contentHash"][0]["value"]
    assert recorded == digest_for("/downloads.example.invalid/bin/hello")[7:]


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "dcos_bundle.cli", *args], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_console_script_migrates_and_builds_with_json_output(tmp_path, asset_server):
    definition = write_definition(tmp_path / "def", uris={"payload": ORIGIN + "p.tgz"})
    mirror = "=".join(asset_server.mirror_for(ORIGIN))
    done = run_cli("build", "--build-definition-file", str(definition), "--output-directory", str(tmp_path / "out"),
                   "--asset-mirror", mirror, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["bundle"] == str(tmp_path / "out" / "hello-1.0.0.dcos") and result["assets"] == 1

    again = run_cli("build", "--build-definition-file", str(definition), "--output-directory", str(tmp_path / "out"),
                    "--asset-mirror", mirror, "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["error"]["code"] == "output_exists"

    human = run_cli("build", "--build-definition-file", str(definition), "--output-directory", str(tmp_path / "out"))
    assert human.returncode == 1
    assert human.stderr.startswith("error [output_exists]: ")

    usage = run_cli("build", "--output-directory", str(tmp_path))
    assert usage.returncode == 2 and "--build-definition-file" in usage.stderr


def test_builds_of_the_same_inputs_by_different_users_give_the_same_bytes(tmp_path, asset_server):
    definition = write_definition(tmp_path / "def", uris={"payload": ORIGIN + "p.tgz"})
    mirror = "=".join(asset_server.mirror_for(ORIGIN))
    built = []
    for user in ("alice", "bob"):
        done = run_cli("build", "--build-definition-file", str(definition), "--output-directory", str(tmp_path / user),
                       "--asset-mirror", mirror, "--json", SOURCE_DATE_EPOCH="1700000000", USER=user, LOGNAME=user)
        assert done.returncode == 0, done.stderr
        built.append(tmp_path / user / "hello-1.0.0.dcos")
    assert built[0].read_bytes() == built[1].read_bytes()
    with BundleReader(built[0]) as reader:
        manifest = reader.manifest()
    assert manifest.built_at == "2023-11-14T22:13:20Z"
    assert manifest.built_by == {"tool": "dcos-registry", "version": distribution.version("dcos-package-registry")}

    done = run_cli("build", "--build-definition-file", str(definition), "--output-directory", str(tmp_path / "named"),
                   "--asset-mirror", mirror, "--record-builder", SOURCE_DATE_EPOCH="1700000000", USER="carol",
                   LOGNAME="carol")
    assert done.returncode == 0, done.stderr
    with BundleReader(tmp_path / "named" / "hello-1.0.0.dcos") as reader:
        built_by = reader.manifest().built_by
    assert (built_by["host"], built_by["user"]) == (platform.node(), "carol")

    done = run_cli("build", "--build-definition-file", str(definition), "--output-directory", str(tmp_path / "bad"),
                   "--asset-mirror", mirror, SOURCE_DATE_EPOCH="yesterday")
    assert done.returncode == 1
    assert done.stderr == ("error [invalid_source_date_epoch]: SOURCE_DATE_EPOCH must be a whole number of seconds "
                           "since 1970-01-01 UTC, not 'yesterday'.\n")
    assert not (tmp_path / "bad").exists()
