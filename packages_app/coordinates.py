"""How the catalogue names things in URLs: package coordinates, asset paths, image repositories."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlsplit

from django.conf import settings

from dcos_bundle.documents import is_storable_text

# A reference's first component names a registry when it looks like a host (docker's rule).
_REGISTRY_HOST = re.compile(r"^(localhost|.*[.:].*)$")


def package_coordinate(name: str, version: str) -> str:
    """Cosmos's PackageCoordinate: lower-case, unpadded base32 of the compact JSON {"name", "version"}."""
    compact = json.dumps({"name": name, "version": version}, separators=(",", ":")).encode()
    return base64.b32encode(compact).decode("ascii").rstrip("=").lower()


def parse_coordinate(coordinate: str) -> tuple[str, str] | None:
    """The (name, version) a coordinate encodes, or None if it is not one."""
    padded = coordinate.upper() + "=" * (-len(coordinate) % 8)
    try:
        decoded = json.loads(base64.b32decode(padded))
        name, version = decoded["name"], decoded["version"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    # Only text the catalogue can hold names a package (no NUL, no unpaired surrogate).
    if not all(isinstance(part, str) and is_storable_text(part) for part in (name, version)):
        return None
    return name, version


def resource_path(name: str, version: str, digest: str, file_name: str) -> str:
    return f"/resource/{package_coordinate(name, version)}/{digest}/{file_name}"


def resource_url(name: str, version: str, digest: str, file_name: str) -> str:
    return settings.PUBLIC_BASE_URL + resource_path(name, version, digest, file_name)


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference, without the registry host it named.

    ``mesosphere/kafka:2.3`` -> ("mesosphere/kafka", "2.3", None); ``nginx`` -> ("library/nginx",
    "latest", None) as Docker Hub names it; ``host:5000/a/b@sha256:...`` -> ("a/b", None, "sha256:...").
    """
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    if len(parts) > 1 and _REGISTRY_HOST.match(parts[0]):
        host, parts = parts[0], parts[1:]
    else:
        host = "docker.io"
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io") and len(parts) == 1:
        parts = ["library", *parts]
    if tag is None and not digest:
        tag = "latest"
    return "/".join(parts).lower(), tag, digest or None


def docker_hub_names(repository: str) -> tuple[str, ...]:
    """The names a repository is pulled under, as on Docker Hub: ``nginx`` and ``library/nginx`` are one."""
    parts = repository.split("/")
    if len(parts) == 1:
        return repository, f"library/{repository}"
    if len(parts) == 2 and parts[0] == "library":
        return repository, parts[1]
    return (repository,)


def registry_host() -> str:
    """The host[:port] clusters pull images from: this registry's public address."""
    return urlsplit(settings.PUBLIC_BASE_URL).netloc
