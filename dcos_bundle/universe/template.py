"""Rendering a package's Marathon template with its configuration defaults, as Cosmos would.

The scope is the config schema's defaults with ``{"resource": <resource>}`` merged in (deeply:
a package may have a ``resource`` option of its own). Booleans print as ``true``/``false``, and
arrays and objects printed whole as compact JSON. Strings are printed JSON-escaped, as current
Cosmos does (a default such as ``[["hostname", "UNIQUE"]]`` inside quotes stays one JSON
string); templates written for Cosmos releases that inserted strings raw (``"roles": {{roles}}``
with a JSON-looking string default) are rendered that way when the escaped rendering is not JSON.
"""

from __future__ import annotations

import base64
import binascii
import json

import chevron

from dcos_bundle.errors import ErrorCode, RegistryError


class _Bool(int):
    """A boolean that prints as JSON's ``true``/``false`` and keeps its truth value in sections."""

    def __str__(self) -> str:
        return "true" if self else "false"


class _List(list):
    # chevron prints an empty falsy value as "" unless told to keep it: "[]" is what is meant.
    _CHEVRON_return_scope_when_falsy = True

    def __str__(self) -> str:
        return json.dumps(self, separators=(",", ":"))


class _Dict(dict):
    _CHEVRON_return_scope_when_falsy = True

    def __str__(self) -> str:
        return json.dumps(self, separators=(",", ":"))


def _scope_value(value, escape_strings: bool):
    if isinstance(value, bool):
        return _Bool(value)
    if isinstance(value, str):
        return json.dumps(value)[1:-1] if escape_strings else value
    if isinstance(value, list):
        return _List(_scope_value(item, escape_strings) for item in value)
    if isinstance(value, dict):
        return _Dict((key, _scope_value(item, escape_strings)) for key, item in value.items())
    return value


def _merged(base, overlay):
    if isinstance(base, dict) and isinstance(overlay, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in overlay.items()}}
    return overlay


# What a required option without a default is given, so the template's shape can be checked.
_PLACEHOLDERS = {"string": "", "boolean": False, "array": [], "object": {}}


def config_defaults(schema, required: bool = False):
    """The options a JSON Schema's defaults give: nested objects collect their properties' defaults.

    A required option without a default (which the user must give at install time) gets a
    placeholder of its type: its minimum for numbers, otherwise an empty value.
    """
    if not isinstance(schema, dict):
        return None
    if "default" in schema:
        return schema["default"]
    properties = schema.get("properties")
    if isinstance(properties, dict):
        needed = set(schema.get("required") or [])
        defaults = {}
        for name, property_schema in properties.items():
            value = config_defaults(property_schema, required=name in needed)
            if value is not None:
                defaults[name] = value
        return defaults
    if required and schema.get("type") in ("integer", "number"):
        return schema.get("minimum", 0)
    if required:
        return _PLACEHOLDERS.get(schema.get("type"))
    return None


def render_marathon_app(metadata: dict) -> dict | None:
    """The Marathon app the template renders to with default options; None if there is no template."""
    marathon = metadata.get("marathon")
    if not marathon:
        return None
    try:
        template = base64.b64decode(marathon["v2AppMustacheTemplate"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise RegistryError(
            ErrorCode.TEMPLATE_INVALID, f"marathon.v2AppMustacheTemplate is not base64 of UTF-8 text: {error}."
        ) from None
    scope = _merged(config_defaults(metadata.get("config")) or {}, {"resource": metadata.get("resource") or {}})
    escaped_error = None
    for escape_strings in (True, False):
        try:
            rendered = chevron.render(template, _scope_value(scope, escape_strings))
        except (chevron.ChevronError, IndexError, KeyError, TypeError) as error:
            raise RegistryError(ErrorCode.TEMPLATE_RENDER_FAILED, f"The Marathon template does not render: {error}.") from None
        try:
            app = json.loads(rendered)
        except json.JSONDecodeError as error:
            # Report what the current Cosmos would see.
            escaped_error = escaped_error or _invalid_json(rendered, error)
            continue
        if not isinstance(app, dict):
            raise RegistryError(ErrorCode.TEMPLATE_INVALID_JSON, "The Marathon template must render to a JSON object (an app).")
        return app
    raise escaped_error


def _invalid_json(rendered: str, error: json.JSONDecodeError) -> RegistryError:
    lines = rendered.splitlines()
    text = lines[error.lineno - 1].strip()[:200] if error.lineno <= len(lines) else ""
    return RegistryError(
        ErrorCode.TEMPLATE_INVALID_JSON,
        f"With the default options the Marathon template renders to invalid JSON at line {error.lineno}, "
        f"column {error.colno}: {error.msg}.",
        line=error.lineno, column=error.colno, text=text,
    )
