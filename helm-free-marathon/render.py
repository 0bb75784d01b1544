#!/usr/bin/env python3
"""Render the registry's Marathon definitions: fill the placeholders of the JSON templates.

    python3 render.py --variant s3 --values values.json [--set web_instances=3 ...] --out rendered/

writes ``rendered/registry-<variant>.json`` (the group, for ``dcos marathon group add``) and
``rendered/apps/<app>.json`` (each app alone, for ``dcos marathon app update``). Templates hold
``{{name}}`` placeholders inside JSON strings; a string that is exactly one placeholder of a
numeric kind becomes a number. Values come from a JSON object file and ``--set name=value``
flags (flags win). An unknown name, a missing or malformed value, or a template naming an
undeclared placeholder stops the run with a message and exit status 2, writing nothing.

Plain Python 3, standard library only: it runs on any operator workstation.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
GROUPS = {"local": HERE / "groups" / "registry-local.json", "s3": HERE / "groups" / "registry-s3.json"}
PLACEHOLDER = re.compile(r"\{\{([a-z0-9_]+)\}\}")
INCLUDE_PREFIX = "@"


class RenderError(Exception):
    """Bad values or templates, described in one sentence for the operator."""


def _whole(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError
    return int(value) if value.is_integer() else value


def _http_url(text: str) -> str:
    if urlsplit(text).scheme not in ("http", "https") or not urlsplit(text).hostname:
        raise ValueError
    return text.rstrip("/")


def _s3_url(text: str) -> str:
    if urlsplit(text).scheme != "s3" or not urlsplit(text).netloc or "@" in text:
        raise ValueError
    return text


def _optional_http_url(text: str) -> str:
    return _http_url(text) if text else ""


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text


def _metrics_access(text: str) -> str:
    if text not in ("network", "token", "open"):
        raise ValueError
    return text


def _networks(text: str) -> str:
    networks = [part.strip() for part in text.split(",") if part.strip()]
    if not networks:
        raise ValueError
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError when it is none
    return ",".join(networks)


@dataclass(frozen=True)
class Placeholder:
    meaning: str
    parse: Callable[[str], Any]
    expected: str
    numeric: bool = False


PLACEHOLDERS: dict[str, Placeholder] = {
    "image": Placeholder("the registry image, e.g. registry.example.com/dcos-registry:1.0.0", _text, "an image reference"),
    "public_url": Placeholder("PUBLIC_BASE_URL: the URL clusters reach the registry at", _http_url, "an http(s):// URL"),
    "web_instances": Placeholder("web tasks (S3 variant)", _whole, "a whole number", numeric=True),
    "worker_instances": Placeholder("Celery worker tasks (S3 variant): the scaling knob of ingest", _whole,
                                    "a whole number", numeric=True),
    "web_cpus": Placeholder("CPUs of each web task", _positive, "a positive number", numeric=True),
    "web_mem": Placeholder("memory of each web task, MiB", _positive, "a positive number", numeric=True),
    "worker_cpus": Placeholder("CPUs of each worker task", _positive, "a positive number", numeric=True),
    "worker_mem": Placeholder("memory of each worker task, MiB", _positive, "a positive number", numeric=True),
    "web_concurrency": Placeholder("WEB_CONCURRENCY: gunicorn processes per web task", _whole, "a whole number"),
    "worker_concurrency": Placeholder("CELERY_WORKER_CONCURRENCY: Celery processes per worker task", _whole,
                                      "a whole number"),
    "data_volume_mib": Placeholder("local variant: size of the persistent volume for blobs and staging, MiB",
                                   _whole, "a whole number", numeric=True),
    "postgres_image": Placeholder("the PostgreSQL image, e.g. postgres:16", _text, "an image reference"),
    "postgres_cpus": Placeholder("CPUs of PostgreSQL", _positive, "a positive number", numeric=True),
    "postgres_mem": Placeholder("memory of PostgreSQL, MiB", _positive, "a positive number", numeric=True),
    "postgres_volume_mib": Placeholder("size of PostgreSQL's persistent volume, MiB", _whole, "a whole number",
                                       numeric=True),
    "redis_image": Placeholder("the Redis image, e.g. redis:7", _text, "an image reference"),
    "redis_mem": Placeholder("memory of Redis, MiB", _positive, "a positive number", numeric=True),
    "storage_url": Placeholder("S3 variant: STORAGE_URL, s3://bucket/optional/prefix (no credentials)", _s3_url,
                               "an s3://bucket/prefix URL without credentials"),
    "s3_endpoint_url": Placeholder("S3_ENDPOINT_URL of an S3-compatible server; empty for AWS", _optional_http_url,
                                   "an http(s):// URL or empty"),
    "s3_public_endpoint_url": Placeholder("S3_PUBLIC_ENDPOINT_URL: the S3 endpoint as agents and docker reach it, "
                                          "named by the presigned download URLs; empty: S3_ENDPOINT_URL",
                                          _optional_http_url, "an http(s):// URL or empty"),
    "s3_region": Placeholder("S3_REGION", _text, "a region name"),
    "secret_key_secret": Placeholder("DC/OS secret holding SECRET_KEY", _text, "a secret path"),
    "database_url_secret": Placeholder("DC/OS secret holding DATABASE_URL (with its password)", _text, "a secret path"),
    "postgres_password_secret": Placeholder("DC/OS secret holding the PostgreSQL password", _text, "a secret path"),
    "s3_access_key_id_secret": Placeholder("DC/OS secret holding S3_ACCESS_KEY_ID", _text, "a secret path"),
    "s3_secret_access_key_secret": Placeholder("DC/OS secret holding S3_SECRET_ACCESS_KEY", _text, "a secret path"),
    "metrics_access": Placeholder("METRICS_ACCESS: who may read /metrics (network, token or open)", _metrics_access,
                                  "network, token or open"),
    "metrics_allowed_networks": Placeholder("METRICS_ALLOWED_NETWORKS: the networks Prometheus scrapes from, "
                                            "comma-separated (METRICS_ACCESS=network)", _networks,
                                            "comma-separated IP networks such as 10.0.0.0/8"),
}
# Filled from other values, never given.
DERIVED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "public_host": ("public_url", lambda url: urlsplit(url).hostname),
}


def parse_values(raw: dict[str, Any]) -> dict[str, Any]:
    """Check every given value against its placeholder; unknown names are errors (a typo would be lost)."""
    unknown = sorted(set(raw) - set(PLACEHOLDERS))
    if unknown:
        hint = "; derived from other values" if set(unknown) & set(DERIVED) else ""
        raise RenderError(f"Unknown placeholder(s): {', '.join(unknown)}{hint}. Known: {', '.join(PLACEHOLDERS)}.")
    values = {}
    for name, value in raw.items():
        placeholder = PLACEHOLDERS[name]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RenderError(f"{name}={value!r}: expected {placeholder.expected}.")
        try:
            values[name] = placeholder.parse(str(value))
        except ValueError:
            raise RenderError(f"{name}={value!r}: expected {placeholder.expected}.") from None
    return values


def load_template(path: Path) -> Any:
    """A template with its @includes replaced by the included templates."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RenderError(f"Cannot read template {path.relative_to(HERE)}: {error}") from None
    if isinstance(document, dict) and "apps" in document:
        document["apps"] = [
            load_template(HERE / entry[len(INCLUDE_PREFIX):]) if str(entry).startswith(INCLUDE_PREFIX) else entry
            for entry in document["apps"]
        ]
    return document


def placeholders_in(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(placeholders_in(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(placeholders_in(value) for value in node))
    if isinstance(node, str):
        if "{{" in PLACEHOLDER.sub("", node) or "}}" in PLACEHOLDER.sub("", node):
            raise RenderError(f"Malformed placeholder in template string {node!r}.")
        return set(PLACEHOLDER.findall(node))
    return set()


def fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {key: fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [fill(value, values) for value in node]
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole and whole[1] in PLACEHOLDERS and PLACEHOLDERS[whole[1]].numeric:
            return values[whole[1]]
        return PLACEHOLDER.sub(lambda match: str(values[match[1]]), node)
    return node


def render(variant: str, raw_values: dict[str, Any]) -> dict[str, Any]:
    """The group of the variant, every placeholder filled."""
    values = parse_values(raw_values)
    group = load_template(GROUPS[variant])
    used = placeholders_in(group)
    undeclared = sorted(used - set(PLACEHOLDERS) - set(DERIVED))
    if undeclared:
        raise RenderError(f"The {variant} templates use undeclared placeholder(s): {', '.join(undeclared)}.")
    needed = (used & set(PLACEHOLDERS)) | {DERIVED[name][0] for name in used & set(DERIVED)}
    missing = sorted(needed - set(values))
    if missing:
        raise RenderError(f"Missing value(s) for the {variant} variant: "
                          + "; ".join(f"{name} ({PLACEHOLDERS[name].meaning})" for name in missing) + ".")
    values.update({name: derive(values[source]) for name, (source, derive) in DERIVED.items() if name in used})
    return fill(group, values)


def write(group: dict[str, Any], variant: str, out: Path) -> list[Path]:
    written = [out / f"registry-{variant}.json"]
    (out / "apps").mkdir(parents=True, exist_ok=True)
    written[0].write_text(json.dumps(group, indent=2) + "\n")
    for app in group["apps"]:
        path = out / "apps" / f"{app['id'].rsplit('/', 1)[1]}.json"
        path.write_text(json.dumps(app, indent=2) + "\n")
        written.append(path)
    return written


def read_values(values_file: Path | None, assignments: list[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if values_file is not None:
        try:
            raw = json.loads(values_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RenderError(f"Cannot read values file {values_file}: {error}") from None
        if not isinstance(raw, dict):
            raise RenderError(f"Values file {values_file}: expected a JSON object of name → value.")
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals:
            raise RenderError(f"--set {assignment!r}: expected name=value.")
        raw[name.strip()] = value
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Render the registry's Marathon group and apps.",
        epilog="Placeholders: " + "; ".join(f"{name}: {p.meaning}" for name, p in PLACEHOLDERS.items()),
    )
    parser.add_argument("--variant", required=True, choices=sorted(GROUPS),
                        help="local: one web+worker task on a local persistent volume; s3: blobs on S3, "
                             "web and workers scaled apart")
    parser.add_argument("--values", type=Path, help="JSON object of placeholder values")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                        help="a placeholder value (repeatable; wins over --values)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the rendered files")
    args = parser.parse_args(argv)
    try:
        group = render(args.variant, read_values(args.values, args.assignments))
    except RenderError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    for path in write(group, args.variant, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
