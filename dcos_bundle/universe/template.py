"""Rendering a package's Marathon template with its configuration defaults, as Cosmos would.

The scope is the config schema's defaults with ``{"resource": <resource>}`` merged in (deeply:
a package may have a ``resource`` option of its own). Booleans print as ``true``/``false``, and
arrays and objects printed whole as compact JSON. Strings are printed JSON-escaped, as current
Cosmos does (a default such as ``[["hostname", "UNIQUE"]]`` inside quotes stays one JSON
string); templates written for Cosmos releases that inserted strings raw (``"roles": {{roles}}``
with a JSON-looking string default) are rendered that way when the escaped rendering is not JSON.

Partials (``{{> name}}``) are refused: chevron would read them from the worker's file system, and
no Universe package uses one. The rendered app is held to the rules of every JSON document of a
bundle (dcos_bundle.documents).
"""

from __future__ import annotations

import base64
import binascii
import json

import chevron
from chevron.tokenizer import tokenize

from dcos_bundle.documents import parse_json
from dcos_bundle.errors import ErrorCode, RegistryError

RENDERED = "The Marathon template rendered with the default options"
# List items one render may go through (with their defaults, Universe's templates go through none).
MAX_SECTION_ITEMS = 10_000
# What chevron raises for a template it cannot parse or render.
_CHEVRON_ERRORS = (chevron.ChevronError, IndexError, KeyError, TypeError)


class _Bool(int):
    """A boolean that prints as JSON's ``true``/``false`` and keeps its truth value in sections."""

    def __str__(self) -> str:
        return "true" if self else "false"


class _Budget:
    """List items a render may still go through: sections over lists multiply when nested, and a template of a
    few bytes could otherwise keep a worker busy for ever."""

    def __init__(self):
        self.left = MAX_SECTION_ITEMS

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise RegistryError(
                ErrorCode.TEMPLATE_RENDER_FAILED, f"The Marathon template goes through more than {MAX_SECTION_ITEMS} "
                "list items when it renders (its sections over lists nest too deep or repeat too often).",
                limit=MAX_SECTION_ITEMS,
            )


class _List(list):
    # chevron prints an empty falsy value as "" unless told to keep it: "[]" is what is meant.
    _CHEVRON_return_scope_when_falsy = True

    def __init__(self, items, budget: _Budget):
        super().__init__(items)
        self._budget = budget

    def __iter__(self):
        # chevron renders a section once per item it iterates; json.dumps reads the items without iterating.
        for item in super().__iter__():
            self._budget.spend()
            yield item

    def __str__(self) -> str:
        return json.dumps(self, separators=(",", ":"))


class _Dict(dict):
    _CHEVRON_return_scope_when_falsy = True

    def __str__(self) -> str:
        return json.dumps(self, separators=(",", ":"))


def _scope_value(value, escape_strings: bool, budget: _Budget):
    if isinstance(value, bool):
        return _Bool(value)
    if isinstance(value, str):
        return json.dumps(value)[1:-1] if escape_strings else value
    if isinstance(value, list):
        return _List((_scope_value(item, escape_strings, budget) for item in value), budget)
    if isinstance(value, dict):
        return _Dict((key, _scope_value(item, escape_strings, budget)) for key, item in value.items())
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
        required_names = schema.get("required")
        needed = {name for name in required_names if isinstance(name, str)} if isinstance(required_names, list) else set()
        defaults = {}
        for name, property_schema in properties.items():
            value = config_defaults(property_schema, required=name in needed)
            if value is not None:
                defaults[name] = value
        return defaults
    kind = schema.get("type")
    # A list of types ("type": ["string", "null"]) names no single placeholder.
    if required and kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if required and isinstance(kind, str):
        return _PLACEHOLDERS.get(kind)
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
    _refuse_partials(template)
    scope = _merged(config_defaults(metadata.get("config")) or {}, {"resource": metadata.get("resource") or {}})
    escaped_error = None
    for escape_strings in (True, False):
        try:
            # No partials path: even a partial that slipped through reads no file.
            rendered = chevron.render(template, _scope_value(scope, escape_strings, _Budget()), partials_path=None)
        except _CHEVRON_ERRORS as error:
            raise RegistryError(ErrorCode.TEMPLATE_RENDER_FAILED, f"The Marathon template does not render: {error}.") from None
        except RecursionError:
            raise RegistryError(ErrorCode.TEMPLATE_RENDER_FAILED, "The Marathon template nests its sections too deeply "
                                "to render.") from None
        try:
            app = parse_json(rendered, RENDERED)
        except RegistryError as error:
            if error.code != ErrorCode.INVALID_JSON:
                raise
            # Report what the current Cosmos would see.
            escaped_error = escaped_error or _invalid_json(rendered, error)
            continue
        if not isinstance(app, dict):
            raise RegistryError(ErrorCode.TEMPLATE_INVALID_JSON, "The Marathon template must render to a JSON object (an app).")
        return app
    raise escaped_error


def _refuse_partials(template: str) -> None:
    try:
        partials = [name for tag, name in tokenize(template) if tag == "partial"]
    except _CHEVRON_ERRORS as error:
        raise RegistryError(ErrorCode.TEMPLATE_RENDER_FAILED, f"The Marathon template does not render: {error}.") from None
    if partials:
        raise RegistryError(
            ErrorCode.TEMPLATE_PARTIAL, f"The Marathon template includes the partial {partials[0][:100]!r}; "
            "templates may not include partials (Universe templates are one self-contained document).",
            partial=partials[0][:100],
        )


def _invalid_json(rendered: str, error: RegistryError) -> RegistryError:
    """TEMPLATE_INVALID_JSON, with the line of the rendered app where parsing failed."""
    where = {}
    if (line := error.details.get("line")) is not None:
        lines = rendered.splitlines()
        where = {"line": line, "column": error.details["column"],
                 "text": lines[line - 1].strip()[:200] if line <= len(lines) else ""}
    return RegistryError(ErrorCode.TEMPLATE_INVALID_JSON, error.message, **where)
