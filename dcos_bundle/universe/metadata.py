"""The registry's own validation of bundle metadata (``metadata.json``).

It accepts what Universe's ``metadata-schema.json`` (JSON Schema draft 4) accepts for packagingVersion 3.0, 4.0 and
5.0. The rules are written out as code; the schema is not used at runtime. A few checks go beyond that schema where
Cosmos or the v5 repository schema need them. Each of them is marked "Beyond the schema".

Patterns behave as JSON Schema says they should, which is ECMA-262, not Python's ``re``. In ECMA-262, ``$`` matches
only at the very end of the string, while Python's ``$`` also matches before a final newline. ``\\s`` means
ECMA-262's set of whitespace characters. ``.`` leaves out all four line terminators, not only ``\\n``. Each pattern
below is translated by hand, and the translation keeps the schema's source text so messages can show it.

Plain Python: no Django and no jsonschema.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from dcos_bundle.errors import ErrorCode, RegistryError

PACKAGING_VERSIONS = ("3.0", "4.0", "5.0")
# The repository assigns these fields to a package. Package authors never write them.
REPOSITORY_FIELDS = ("releaseVersion", "selected")


@dataclass(frozen=True)
class FieldError:
    path: str  # JSON path, e.g. `$.resource.assets.uris["jre-tar-gz"]` or `$.tags[2]`
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class _Pattern:
    source: str  # the pattern as metadata-schema.json writes it, for messages
    regex: re.Pattern  # the same language under ECMA-262 rules, applied with search() as JSON Schema does
    hint: str


# ECMA-262 \s: WhiteSpace and LineTerminator (Unicode Zs included). Python's \s differs: it leaves out U+FEFF and
# includes U+001C..U+001F and U+0085.
_ECMA_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"

_NAME = _Pattern(
    "^[a-z][a-z0-9-]*[a-z0-9]$",
    re.compile(r"\A[a-z][a-z0-9-]*[a-z0-9]\Z"),
    "lower-case letters, digits and '-', starting with a letter and not ending with '-'",
)
_VERSION = _Pattern("^[-a-zA-Z0-9.]+$", re.compile(r"\A[-a-zA-Z0-9.]+\Z"), "")
_TAG = _Pattern("^[^\\s]+$", re.compile(f"\\A[^{_ECMA_SPACE}]+\\Z"), "no whitespace")
_DCOS_RELEASE = _Pattern(
    "^(?:0|[1-9][0-9]*)(?:\\.(?:0|[1-9][0-9]*))*$",
    re.compile(r"\A(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*\Z"),
    "numbers without leading zeros, separated by dots, e.g. 1.10",
)
# The schema's groups are capturing. Non-capturing groups accept the same strings and are faster on big templates.
_BASE64 = _Pattern(
    "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$",
    re.compile(r"\A(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)\Z"),
    "standard base64 with padding, not empty",
)
# In ECMA-262, "." matches any character except the line terminators \n, \r, U+2028 and U+2029.
_URL = _Pattern(".", re.compile("[^\n\r\u2028\u2029]"), "a URL, not empty")

# A check looks at one value found at `where` (a tuple of keys and indexes) and appends (where, message) pairs.
_Errors = list[tuple[tuple, str]]
_Check = Callable[[Any, tuple, _Errors], None]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is a subclass of int, but JSON Schema keeps them apart
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return f"Python {type(value).__name__}"


def _quote(value: Any, limit: int = 60) -> str:
    # ASCII escapes make invisible characters (newlines, U+FEFF) show up in the message.
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def _got(value: Any) -> str:
    kind = _json_type(value)
    if kind in ("object", "array"):
        return f"an {kind}"
    if kind in ("null", "boolean", "number", "string"):
        return "null" if value is None else f"{kind} {_quote(value)}"
    return f"a {kind}"


def _names(names) -> str:
    return ", ".join(json.dumps(name) for name in names)


def _string(pattern: _Pattern | None = None) -> _Check:
    def check(value, where, errors):
        if not isinstance(value, str):
            errors.append((where, f"expected a string, got {_got(value)}"))
        elif pattern is not None and not pattern.regex.search(value):
            hint = f" ({pattern.hint})" if pattern.hint else ""
            errors.append((where, f"{_quote(value)} does not match {pattern.source}{hint}"))

    return check


def _enum(*allowed: str) -> _Check:
    def check(value, where, errors):
        if not isinstance(value, str):
            errors.append((where, f"expected a string, one of {_names(allowed)}, got {_got(value)}"))
        elif value not in allowed:
            errors.append((where, f"{_quote(value)} is not one of {_names(allowed)}"))

    return check


def _boolean(value, where, errors):
    if not isinstance(value, bool):
        errors.append((where, f"expected a boolean, got {_got(value)}"))


def _number(value, where, errors):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append((where, f"expected a number, got {_got(value)}"))
    elif isinstance(value, float) and not math.isfinite(value):  # math.isfinite() overflows on huge ints
        # Beyond the schema: JSON has no NaN or Infinity. Python's json module reads them anyway, and then the
        # repository would serve JSON that Cosmos cannot parse.
        errors.append((where, f"expected a finite number, got {_quote(value)}"))


def _array(items: _Check, non_empty: bool = False) -> _Check:
    def check(value, where, errors):
        if not isinstance(value, list):
            errors.append((where, f"expected an array, got {_got(value)}"))
            return
        if non_empty and not value:
            errors.append((where, "must not be empty; expected at least one item"))
        for index, item in enumerate(value):
            items(item, where + (index,), errors)

    return check


def _mapping(values: _Check) -> _Check:
    """An object with any keys. Each value must pass `values`."""

    def check(value, where, errors):
        if not isinstance(value, dict):
            errors.append((where, f"expected an object, got {_got(value)}"))
            return
        for key, item in value.items():
            values(item, where + (key,), errors)

    return check


def _record(
    fields: dict[str, _Check],
    required: tuple[str, ...] = (),
    *,
    non_empty: bool = False,
    open_ended: bool = False,
    unknown: Callable[[str], str] | None = None,
) -> _Check:
    """An object with known fields. Other fields are errors unless `open_ended`. `unknown` words that error."""

    def check(value, where, errors):
        if not isinstance(value, dict):
            errors.append((where, f"expected an object, got {_got(value)}"))
            return
        for name in required:
            if name not in value:
                errors.append((where, f"missing required field {json.dumps(name)}"))
        if non_empty and not value:
            errors.append((where, f"must not be empty; expected at least one of {_names(fields)}"))
        for key, item in value.items():
            if key in fields:
                fields[key](item, where + (key,), errors)
            elif not open_ended:
                message = unknown(key) if unknown else f"unknown field; expected one of {_names(fields)}"
                errors.append((where + (key,), message))

    return check


def _config(value, where, errors):
    # Beyond the schema, whose `config` is `{}` and so allows anything. Cosmos reads `config` as the JSON Schema of
    # the package's options. It merges user options and defaults into that schema's properties, so an object is
    # needed.
    if not isinstance(value, dict):
        errors.append((where, f"expected an object (the JSON Schema of the package's options), got {_got(value)}"))
        return
    if "type" in value and value["type"] != "object":
        errors.append((where + ("type",), f'expected "object" (options are an object), got {_got(value["type"])}'))
    if "properties" in value and not isinstance(value["properties"], dict):
        errors.append((where + ("properties",), f"expected an object, got {_got(value['properties'])}"))


_STRINGS = _array(_string())
_HASH = _record({"algo": _enum("sha256"), "value": _string()}, ("algo", "value"))
_CLI_INFO = _record(
    {"url": _string(_URL), "kind": _enum("executable", "zip"), "contentHash": _array(_HASH, non_empty=True)},
    ("url", "kind", "contentHash"),
)
_PLATFORM = _record({"x86-64": _CLI_INFO}, ("x86-64",))
_RESOURCE = _record(
    {
        "assets": _record(
            {"uris": _mapping(_string()), "container": _record({"docker": _mapping(_string())})},
        ),
        "cli": _record(
            {"binaries": _record({"darwin": _PLATFORM, "linux": _PLATFORM, "windows": _PLATFORM}, non_empty=True)},
            ("binaries",),
        ),
        "images": _record(
            {"icon-small": _string(), "icon-medium": _string(), "icon-large": _string(), "screenshots": _STRINGS},
        ),
    }
)
_COMMON_FIELDS: dict[str, _Check] = {
    "packagingVersion": _enum(*PACKAGING_VERSIONS),
    "name": _string(_NAME),
    "version": _string(_VERSION),
    "scm": _string(),
    "maintainer": _string(),
    "website": _string(),
    "description": _string(),
    "framework": _boolean,
    "preInstallNotes": _string(),
    "postInstallNotes": _string(),
    "postUninstallNotes": _string(),
    "tags": _array(_string(_TAG)),
    "licenses": _array(_record({"name": _string(), "url": _string(_URL)}, ("name", "url"))),
    "minDcosReleaseVersion": _string(_DCOS_RELEASE),
    "marathon": _record({"v2AppMustacheTemplate": _string(_BASE64)}, ("v2AppMustacheTemplate",)),
    "resource": _RESOURCE,
    "config": _config,
    "hasKnownIssues": _boolean,
    "lastUpdated": _number,
}
_UPGRADE_FIELDS = {"upgradesFrom": _STRINGS, "downgradesTo": _STRINGS}
_FIELDS: dict[str, dict[str, _Check]] = {
    # Beyond the schema: its `command` has no `"type": "object"`, so it would accept a string. Cosmos reads an
    # object with `pip`.
    "3.0": {**_COMMON_FIELDS, "command": _record({"pip": _STRINGS}, ("pip",))},
    "4.0": {**_COMMON_FIELDS, **_UPGRADE_FIELDS},
    "5.0": {
        **_COMMON_FIELDS,
        **_UPGRADE_FIELDS,
        # Beyond the schema: metadata-schema.json does not require `packageName`, but the v5 repository schema and
        # Cosmos do. Both schemas allow other fields here.
        "manager": _record(
            {"packageName": _string(_NAME), "minPackageVersion": _string(_VERSION)},
            ("packageName",),
            open_ended=True,
        ),
    },
}
_REQUIRED = ("packagingVersion", "name", "version", "maintainer", "description", "tags")


def _unknown_top_level(version: str) -> Callable[[str], str]:
    def message(key: str) -> str:
        if key in REPOSITORY_FIELDS:
            return "is assigned by the repository and may not appear in metadata"
        others = [other for other, fields in _FIELDS.items() if key in fields]
        if others:
            verb = "has" if len(others) == 1 else "have"
            return f"unknown field for packagingVersion {version}; only {' and '.join(others)} {verb} it"
        return f"unknown field for packagingVersion {version}"

    return message


_METADATA = {
    version: _record(fields, _REQUIRED, unknown=_unknown_top_level(version)) for version, fields in _FIELDS.items()
}
_ACCEPTED = f"supported: {_names(PACKAGING_VERSIONS)}; migrate packagingVersion 2.0 to 3.0 first"


def _check_metadata_object(metadata: Any, errors: _Errors) -> None:
    if not isinstance(metadata, dict):
        errors.append(((), f"expected an object, got {_got(metadata)}"))
        return
    if "packagingVersion" not in metadata:
        errors.append(((), f'missing required field "packagingVersion" ({_ACCEPTED})'))
        return
    version = metadata["packagingVersion"]
    if not isinstance(version, str):
        errors.append((("packagingVersion",), f"expected a string, got {_got(version)} ({_ACCEPTED})"))
    elif version not in _METADATA:
        errors.append((("packagingVersion",), f"{_quote(version)} is not supported ({_ACCEPTED})"))
    else:
        # Without a known version there is no known set of fields. In that case the version is the only error.
        _METADATA[version](metadata, (), errors)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _render(where: tuple) -> str:
    parts = ["$"]
    for step in where:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _IDENTIFIER.fullmatch(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(step)}]")
    return "".join(parts)


def _order(error: tuple[tuple, str]) -> tuple:
    # Sort by the path's steps, not by its text: $.tags[2] comes before $.tags[10].
    where, message = error
    return tuple((isinstance(step, str), step) for step in where), message


def validate_metadata(metadata: Any) -> list[FieldError]:
    """Every way `metadata` breaks the rules, sorted by path. An empty list means it is valid."""
    errors: _Errors = []
    _check_metadata_object(metadata, errors)
    return [FieldError(_render(where), message) for where, message in sorted(errors, key=_order)]


def check_metadata(metadata: Any) -> None:
    """Raise RegistryError("invalid_metadata") that lists every error, or return when the metadata is valid."""
    errors = validate_metadata(metadata)
    if errors:
        more = f"; {len(errors) - 1} more" if len(errors) > 1 else ""
        raise RegistryError(
            ErrorCode.INVALID_METADATA,
            f"Invalid metadata: {errors[0]}{more}.",
            errors=[{"path": error.path, "message": error.message} for error in errors],
        )
