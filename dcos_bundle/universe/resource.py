"""Where a package's resource names downloadable files and Docker images."""

from __future__ import annotations

import posixpath
import re
from typing import Iterator
from urllib.parse import unquote, urlsplit

from dcos_bundle.format import json_pointer

_UNSAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9._+-]")
# What the builder fetches and the registry serves. Other values are the package's to keep as they are, as the
# Universe generator did: an empty placeholder its Marathon template fills from an option, a URL of a scheme the
# Mesos fetcher reads itself (hdfs://, s3://).
DOWNLOADABLE = re.compile(r"^(?:https?|file):", re.IGNORECASE)


def _url_places(metadata: dict) -> Iterator[tuple[object, str]]:
    """(value, JSON pointer) of every place in ``resource`` that holds a URL of a file."""
    resource = metadata.get("resource") or {}
    for name, url in (resource.get("assets", {}).get("uris") or {}).items():
        yield url, json_pointer("resource", "assets", "uris", name)
    images = resource.get("images") or {}
    for name, url in images.items():
        if name == "screenshots":
            for number, screenshot in enumerate(url or []):
                yield screenshot, json_pointer("resource", "images", "screenshots", number)
        else:
            yield url, json_pointer("resource", "images", name)
    for os_name, platforms in (resource.get("cli", {}).get("binaries") or {}).items():
        for arch, binary in (platforms or {}).items():
            yield (binary or {}).get("url"), json_pointer("resource", "cli", "binaries", os_name, arch, "url")


def is_downloadable(value: object) -> bool:
    return isinstance(value, str) and DOWNLOADABLE.match(value) is not None


def asset_urls(metadata: dict) -> dict[str, list[str]]:
    """Every downloadable (http, https or file) URL in ``resource``, with the JSON pointers of the places naming it."""
    found: dict[str, list[str]] = {}
    for url, pointer in _url_places(metadata):
        if is_downloadable(url):
            found.setdefault(url, []).append(pointer)
    return found


def kept_values(metadata: dict) -> dict[str, object]:
    """The places in ``resource`` whose value is no downloadable URL (pointer -> value): they stay as they are."""
    return {pointer: value for value, pointer in _url_places(metadata)
            if value is not None and not is_downloadable(value)}


def image_references(metadata: dict) -> dict[str, list[str]]:
    """Every Docker image reference in ``resource.assets.container.docker``, with its JSON pointers."""
    docker = (metadata.get("resource") or {}).get("assets", {}).get("container", {}).get("docker") or {}
    found: dict[str, list[str]] = {}
    for name, reference in docker.items():
        found.setdefault(reference, []).append(json_pointer("resource", "assets", "container", "docker", name))
    return found


def file_name_of(url: str) -> str:
    name = posixpath.basename(unquote(urlsplit(url).path)) or "asset"
    return _UNSAFE_FILE_NAME.sub("_", name)
