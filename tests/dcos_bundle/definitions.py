"""Build definitions as `dcos-registry migrate` writes them, for the builder's tests."""

from __future__ import annotations

import json

from tests.bundles import CONFIG_SCHEMA, TEMPLATE

ORIGIN = "https://downloads.example.invalid/"


def write_definition(directory, name="hello", version="1.0.0", uris=None, images=None, cli=None, **fields):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(CONFIG_SCHEMA))
    (directory / "marathon.json.mustache").write_text(TEMPLATE)
    resource = {"assets": {"uris": uris or {}, "container": {"docker": images or {}}}}
    if cli:
        resource["cli"] = {"binaries": {"linux": {"x86-64": cli}}}
    (directory / "resource.json").write_text(json.dumps(resource))
    definition = {
        "packagingVersion": "4.0", "name": name, "version": version, "maintainer": "ops@example.invalid",
        "description": "A test package.", "tags": ["test"], "config": "@config.json",
        "resource": "@resource.json", "marathon": {"v2AppMustacheTemplate": "@marathon.json.mustache"}, **fields,
    }
    path = directory / f"{name}-{version}.json"
    path.write_text(json.dumps(definition))
    return path
