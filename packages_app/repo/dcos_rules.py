"""What each DC/OS version gets from a Universe repository, as the Universe generator decided it."""

from __future__ import annotations

import re

from dcos_bundle.universe.rules import release_key  # noqa: F401  (the repository's order of DC/OS versions)

# The packagingVersions each repository version carries (4.0 in v3 after downgrading it). A 5.0 package never
# reaches a v3/v4 repository: Universe only published 5.0 packages for DC/OS 1.12 and later (the generator would
# have failed its own schema check otherwise), and an older Cosmos can neither read one nor use its `manager`.
CARRIES = {"v3": ("3.0", "4.0"), "v4": ("3.0", "4.0"), "v5": ("3.0", "4.0", "5.0")}
ESCAPE_BELOW = (1, 10)
# Parts of at most 9 digits: a version with a longer one is no DC/OS version (and int() of thousands fails).
_DCOS_VERSION = re.compile(r"\bdcos/(\d{1,9}(?:\.\d{1,9})*)(?![\d.]*\d)")
# The generator's own pattern: a double quote not preceded by a backslash.
_UNESCAPED_QUOTE = re.compile(r'([^\\])"')


def dcos_version(user_agent: str | None) -> tuple[int, ...] | None:
    """The cluster's DC/OS version from Cosmos's User-Agent, e.g. ``dcos/1.10.2`` -> (1, 10, 2)."""
    found = _DCOS_VERSION.search(user_agent or "")
    return tuple(int(part) for part in found.group(1).split(".")) if found else None


def highest_repo_version(dcos: tuple[int, ...] | None) -> str:
    if dcos is None:
        return "v5"
    # Compared by major.minor: a patch release (1.9.5) belongs with its minor (the generator only saw X.Y).
    if dcos[:2] < (1, 10):
        return "v3"
    return "v4" if dcos[:2] < (1, 12) else "v5"


def escapes_quotes(dcos: tuple[int, ...] | None) -> bool:
    """Whether the cluster's Cosmos unescapes config strings once too often, so we escape them once more."""
    return dcos is not None and dcos < ESCAPE_BELOW


def _escape_json_string(value):
    return _UNESCAPED_QUOTE.sub(r'\1\\"', value) if isinstance(value, str) else value


def escape_properties(properties: dict) -> None:
    """The generator's json_escape_compatibility: descriptions, string defaults, nested object properties."""
    for schema in properties.values():
        if not isinstance(schema, dict):
            continue
        if "description" in schema:
            schema["description"] = _escape_json_string(schema["description"])
        if schema.get("type") == "string" and "default" in schema:
            schema["default"] = _escape_json_string(schema["default"])
        elif schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
            escape_properties(schema["properties"])


def downgrade_to_v3(package: dict) -> None:
    """A 4.0 package as a v3 repository carries it."""
    package.pop("upgradesFrom", None)
    package.pop("downgradesTo", None)
    package["packagingVersion"] = "3.0"
