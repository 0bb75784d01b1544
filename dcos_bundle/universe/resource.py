"""Where a package's resource names downloadable files and Docker images."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

from dcos_bundle.format import json_pointer

_UNSAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


def asset_urls(metadata: dict) -> dict[str, list[str]]:
    """Every downloadable URL in ``resource``, with the JSON pointers of the places naming it."""
    resource = metadata.get("resource") or {}
    found: dict[str, list[str]] = {}

    def add(url, path: str) -> None:
        if isinstance(url, str):
            found.setdefault(url, []).append(path)

    for name, url in (resource.get("assets", {}).get("uris") or {}).items():
        add(url, json_pointer("resource", "assets", "uris", name))
    images = resource.get("images") or {}
    for name, url in images.items():
        if name == "screenshots":
            for number, screenshot in enumerate(url or []):
                add(screenshot, json_pointer("resource", "images", "screenshots", number))
        else:
            add(url, json_pointer("resource", "images", name))
    for os_name, platforms in (resource.get("cli", {}).get("binaries") or {}).items():
        for arch, binary in (platforms or {}).items():
            add((binary or {}).get("url"), json_pointer("resource", "cli", "binaries", os_name, arch, "url"))
    return found


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
