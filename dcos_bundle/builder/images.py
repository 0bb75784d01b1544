"""Export an image from the local Docker engine as an image config and gzip layers for the bundle.

Reads the `docker save` stream once, without holding layers in memory. Both layouts of that
stream are understood: the docker-archive of Docker 24 and older (``<id>/layer.tar``,
``<config>.json``, repeated layers as symlinks) and the OCI-style one of newer engines
(``blobs/sha256/<hex>`` beside ``index.json``); each has a ``manifest.json`` naming the config and
the layers, in order.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import docker
import requests
from docker.models.images import Image

from dcos_bundle.digests import CHUNK_SIZE
from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.oci import SpooledLayer, spool_layer
from dcos_bundle.streams import IterableReader

# The JSON documents of a save (manifests, configs) are small; anything bigger is not one of them.
DOCUMENT_LIMIT = 4 * 1024 * 1024
# A tar holds at least its two zero end blocks, so a smaller member (VERSION) is never a layer.
SMALLEST_TAR = 1024


def docker_client() -> docker.DockerClient:
    """A client of the engine that DOCKER_HOST names (the local socket when unset)."""
    try:
        return docker.from_env()
    except docker.errors.DockerException as error:
        raise _unavailable(error) from error


def export_image(
    client: docker.DockerClient,
    reference: str,
    work_dir: Path,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[dict, list[SpooledLayer]]:
    """The image config and its layers in order, pulling the image first if the engine lacks it.

    Layers are gzip files spooled into ``work_dir``; ``on_bytes(n)`` is called as the save
    stream's bytes arrive. The caller owns the returned files.
    """
    try:
        image = _local_or_pulled(client, reference)
        # Saving under the reference keeps it in the archive's RepoTags; a reference the engine
        # does not keep as a tag (a digest, a name without tag) is saved by image id.
        chunks = image.save(named=reference if reference in image.tags else False)
        return _read_save_stream(IterableReader(_counted(chunks, on_bytes)), reference, work_dir)
    # ChunkedEncodingError: the connection broke in the middle of the save stream.
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        raise _unavailable(error) from error
    except docker.errors.APIError as error:
        raise RegistryError(
            ErrorCode.IMAGE_EXPORT_CORRUPT,
            f"The Docker engine failed to export image {reference}: {error.explanation or error}.",
            reference=reference,
        ) from error


def _local_or_pulled(client: docker.DockerClient, reference: str) -> Image:
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as error:
        # Not a 404: the engine rejects the reference itself (bad format), so a pull would too.
        raise _not_found(reference, "the Docker engine cannot look it up", error) from error
    try:
        return client.images.pull(reference)
    except docker.errors.APIError as error:
        raise _not_found(reference, "it is not in the Docker engine and pulling it failed", error) from error


def _not_found(reference: str, why: str, error: docker.errors.APIError) -> RegistryError:
    return RegistryError(
        ErrorCode.IMAGE_NOT_FOUND, f"Image {reference}: {why}: {error.explanation or error}.", reference=reference
    )


def _unavailable(error: Exception) -> RegistryError:
    host = os.environ.get("DOCKER_HOST") or "unset, so unix:///var/run/docker.sock"
    return RegistryError(
        ErrorCode.DOCKER_UNAVAILABLE,
        f"Cannot reach the Docker engine (DOCKER_HOST={host}): {error}.",
        docker_host=os.environ.get("DOCKER_HOST"),
    )


def _counted(chunks: Iterable[bytes], on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if on_bytes:
            on_bytes(len(chunk))
        yield chunk


def _read_save_stream(stream: IterableReader, reference: str, work_dir: Path) -> tuple[dict, list[SpooledLayer]]:
    # Which members are layers is known only from manifest.json, which may come last. Members
    # that start like JSON (or are too small for a tar) are kept in memory as documents; every
    # other one is spooled as a possible layer, so no layer is ever held in memory.
    documents: dict[str, bytes] = {}
    spooled: dict[str, SpooledLayer] = {}
    links: dict[str, str] = {}
    try:
        try:
            # Reads of a whole chunk: tarfile's default (10 KiB) would cost a Python call per 10 KiB of every layer.
            with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK_SIZE) as archive:
                for member in archive:
                    name = posixpath.normpath(member.name)
                    if member.issym():
                        links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                    elif member.islnk():
                        links[name] = posixpath.normpath(member.linkname)
                    elif member.isfile():
                        file = archive.extractfile(member)
                        if member.size < SMALLEST_TAR or file.peek(1)[:1] in (b"{", b"["):
                            if member.size > DOCUMENT_LIMIT:
                                raise _corrupt(reference, f"member {name} is a {member.size}-byte JSON document")
                            documents[name] = file.read()
                        else:
                            spooled[name] = spool_layer(file, work_dir)
            # tarfile stops at the end-of-archive blocks; read the padding after them too, so the
            # response is complete and progress reaches the stream's full size.
            stream.drain()
        except tarfile.TarError as error:
            raise _corrupt(reference, f"the archive is not a readable tar ({error})") from error
        config, layers = _image_from_members(reference, documents, spooled, links)
    except BaseException:
        for layer in spooled.values():
            layer.path.unlink(missing_ok=True)
        raise
    used = {layer.path for layer in layers}
    for layer in spooled.values():
        if layer.path not in used:
            layer.path.unlink(missing_ok=True)
    return config, layers


def _image_from_members(
    reference: str, documents: dict[str, bytes], spooled: dict[str, SpooledLayer], links: dict[str, str]
) -> tuple[dict, list[SpooledLayer]]:
    entries = _json_member(reference, documents, "manifest.json")
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("Config"), str) and isinstance(entry.get("Layers"), list)
        for entry in entries
    ):
        raise _corrupt(reference, "manifest.json is not a list of entries with Config and Layers")
    matching = [entry for entry in entries if reference in (entry.get("RepoTags") or [])]
    # Saved by image id, the only entry has no RepoTags.
    if len(matching) != 1 and len(entries) != 1:
        raise _corrupt(reference, f"manifest.json has {len(entries)} entries and none for this reference alone")
    entry = matching[0] if len(matching) == 1 else entries[0]
    config = _json_member(reference, documents, posixpath.normpath(entry["Config"]))
    if not isinstance(config, dict):
        raise _corrupt(reference, f"the config {entry['Config']} is not a JSON object")
    layers = [_layer(reference, posixpath.normpath(path), spooled, links) for path in entry["Layers"]]
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if diff_ids != [layer.diff_id for layer in layers]:
        raise _corrupt(
            reference,
            f"the config lists diff_ids {diff_ids} but the layers hash to {[layer.diff_id for layer in layers]}",
        )
    return config, layers


def _json_member(reference: str, documents: dict[str, bytes], name: str):
    if name not in documents:
        raise _corrupt(reference, f"it has no JSON member {name}")
    try:
        return json.loads(documents[name])
    except ValueError as error:
        raise _corrupt(reference, f"member {name} is not valid JSON ({error})") from error


def _layer(reference: str, name: str, spooled: dict[str, SpooledLayer], links: dict[str, str]) -> SpooledLayer:
    # A repeated layer is a link to the first copy; the bound stops a link cycle.
    for _ in range(len(links) + 1):
        if name in spooled:
            return spooled[name]
        if name not in links:
            break
        name = links[name]
    raise _corrupt(reference, f"layer {name} named in manifest.json is not a tar in the archive")


def _corrupt(reference: str, reason: str) -> RegistryError:
    return RegistryError(
        ErrorCode.IMAGE_EXPORT_CORRUPT,
        f"The Docker engine's export of image {reference} is unusable: {reason}.",
        reference=reference,
    )
