"""Exporting images from the Docker engine as OCI: real dockerd for the engine, skopeo as the outside reader."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import tarfile
import uuid
from types import SimpleNamespace

import docker
import pytest

from dcos_bundle.builder.images import docker_client as engine_from_environment
from dcos_bundle.builder.images import export_image
from dcos_bundle.errors import RegistryError
from dcos_bundle.oci import ImageSet
from dcos_bundle.writer import BundleWriter
from tests.images import GREETING, hand_made_image, load_image, skopeo_inspect


def unique_reference() -> str:
    return f"local/hello-{uuid.uuid4().hex[:8]}:1"


def sha256_file(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def work_dir(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.mark.docker
def test_export_gives_the_config_and_gzip_layers_that_decompress_to_its_diff_ids(tmp_path, docker_client):
    reference = unique_reference()
    image = load_image(docker_client, reference)
    streamed = []
    work = work_dir(tmp_path)
    config, layers = export_image(docker_client, reference, work, on_bytes=streamed.append)

    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in layers] == image.attrs["RootFS"]["Layers"]
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"]["Cmd"] == ["/bin/cat", "/etc/greeting.txt"]
    for layer in layers:
        assert (sha256_file(layer.path), layer.path.stat().st_size) == (layer.digest, layer.size)
        assert "sha256:" + hashlib.sha256(gzip.decompress(layer.path.read_bytes())).hexdigest() == layer.diff_id
    with tarfile.open(layers[0].path) as tar:
        assert tar.extractfile("etc/greeting.txt").read() == GREETING
    # Only the returned layers are left in the work folder; progress covered the whole save stream.
    assert sorted(work.iterdir()) == sorted(layer.path for layer in layers)
    assert sum(streamed) > sum(len(gzip.decompress(layer.path.read_bytes())) for layer in layers)


@pytest.mark.docker
def test_a_repeated_layer_saved_as_a_symlink_is_resolved(tmp_path, docker_client):
    reference = unique_reference()
    load_image(docker_client, reference, repeat_first_layer=True)
    config, layers = export_image(docker_client, reference, work_dir(tmp_path))

    assert [layer.diff_id for layer in layers] == config["rootfs"]["diff_ids"]
    assert len(layers) == 3 and layers[0] == layers[2] and layers[0] != layers[1]
    assert len(list((tmp_path / "work").iterdir())) == 2


@pytest.mark.docker
def test_the_exported_oci_layout_reads_back_in_skopeo(tmp_path, docker_client):
    references = [unique_reference(), unique_reference()]
    images = ImageSet()
    exported = {}
    work = work_dir(tmp_path)
    for index, reference in enumerate(references):
        load_image(docker_client, reference, repeat_first_layer=index == 1)
        config, layers = export_image(docker_client, reference, work)
        exported[reference] = (images.add_image(reference, config, layers), [layer.digest for layer in layers])
    with BundleWriter(tmp_path / "images.zip") as writer:
        images.write_into(writer)
        writer.commit()

    for reference, (manifest_digest, layer_digests) in exported.items():
        raw, inspected = skopeo_inspect(tmp_path / "images.zip", tmp_path / "unpacked", reference)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == manifest_digest
        assert (inspected["Digest"], inspected["Layers"]) == (manifest_digest, layer_digests)
        assert (inspected["Architecture"], inspected["Os"]) == ("amd64", "linux")


@pytest.mark.docker
def test_an_image_the_engine_lacks_and_cannot_pull_is_not_found(tmp_path, docker_client):
    # The pull only reaches loopback, where nothing listens on port 9.
    reference = "127.0.0.1:9/no/such-image:1"
    with pytest.raises(RegistryError) as raised:
        export_image(docker_client, reference, work_dir(tmp_path))
    assert raised.value.code == "image_not_found"
    assert raised.value.details == {"reference": reference}
    assert reference in raised.value.message and "127.0.0.1:9" in raised.value.message.replace(reference, "")


@pytest.mark.docker
def test_an_unreachable_engine_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    with pytest.raises(RegistryError) as raised:
        engine_from_environment()
    assert raised.value.code == "docker_unavailable"
    assert "DOCKER_HOST=unix:///nonexistent.sock" in raised.value.message

    # A client that skipped the version handshake fails on its first call instead.
    client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    with pytest.raises(RegistryError) as raised:
        export_image(client, "local/hello:1", work_dir(tmp_path))
    assert raised.value.code == "docker_unavailable"


def engine_saving(archive: bytes, reference: str):
    """A stand-in engine whose `docker save` of ``reference`` is ``archive``, in small chunks."""
    image = SimpleNamespace(
        tags=[reference], save=lambda named: (archive[i : i + 1000] for i in range(0, len(archive), 1000))
    )
    return SimpleNamespace(images=SimpleNamespace(get=lambda name: image))


@pytest.mark.parametrize("gzip_layers", [False, True], ids=["docker-25-save", "containerd-store-save"])
def test_the_oci_style_save_of_newer_engines_is_read(tmp_path, gzip_layers):
    made = hand_made_image(unique_reference(), repeat_first_layer=True)
    client = engine_saving(made.oci_style_archive(gzip_layers), made.reference)
    config, layers = export_image(client, made.reference, work_dir(tmp_path))

    assert config == made.config
    assert [layer.diff_id for layer in layers] == made.diff_ids
    assert [gzip.decompress(layer.path.read_bytes()) for layer in layers] == made.layers


def test_layers_that_do_not_match_the_config_are_refused_and_removed(tmp_path):
    made = hand_made_image(unique_reference())
    swapped_rootfs = {"type": "layers", "diff_ids": made.diff_ids[::-1]}
    swapped = dataclasses.replace(made, config={**made.config, "rootfs": swapped_rootfs})
    with pytest.raises(RegistryError) as raised:
        export_image(engine_saving(swapped.docker_archive(), made.reference), made.reference, work_dir(tmp_path))
    assert raised.value.code == "image_export_corrupt"
    assert list((tmp_path / "work").iterdir()) == []


def test_a_save_stream_that_is_not_a_tar_is_corrupt(tmp_path):
    reference = unique_reference()
    with pytest.raises(RegistryError) as raised:
        export_image(engine_saving(b"not a tar" * 200, reference), reference, work_dir(tmp_path))
    assert raised.value.code == "image_export_corrupt"
