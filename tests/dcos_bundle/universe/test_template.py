"""Rendering Marathon templates: no partial is ever read, and odd config schemas and templates end in the
template's own error codes, never in another exception."""

from __future__ import annotations

import base64
import time

import pytest

from dcos_bundle.errors import RegistryError
from dcos_bundle.universe.template import MAX_SECTION_ITEMS, config_defaults, render_marathon_app


def metadata(template: str, config: dict | None = None) -> dict:
    return {"marathon": {"v2AppMustacheTemplate": base64.b64encode(template.encode()).decode()},
            "config": config or {"type": "object", "properties": {"name": {"type": "string", "default": "x"}}}}


def render_error(template: str, config: dict | None = None) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        render_marathon_app(metadata(template, config))
    return caught.value


@pytest.mark.parametrize("template", [
    '{"id": "{{> ../../../../../../../etc/hostname}}"}',
    '{"id": "{{>partial}}"}',
    '{"id": "{{> a\0b}}"}',
    '{"id": "{{=<% %>=}}<%> x%>"}',
    '{"id": "{{#name}}{{> inside}}{{/name}}"}',
])
def test_partials_are_refused_before_anything_renders(template, tmp_path, monkeypatch):
    # A partial file that chevron's default partials path would find.
    monkeypatch.chdir(tmp_path)
    for name in ("partial", "inside", "x"):
        (tmp_path / f"{name}.mustache").write_text("leaked")
    error = render_error(template)
    assert error.code == "template_partial"
    assert "leaked" not in error.message


def test_a_template_without_partials_renders_as_before():
    assert render_marathon_app(metadata('{"id": "{{name}}", "n": {{#name}}1{{/name}}}')) == {"id": "x", "n": 1}


@pytest.mark.parametrize("template", ["{{}}", "{{#a}}", "{{/a}}", "{{=x}}", "{{#a}}{{/b}}"])
def test_templates_chevron_cannot_parse_fail_to_render(template):
    assert render_error(template).code == "template_render_failed"


def test_sections_nested_deeper_than_the_renderer_recurses_fail_to_render():
    config = {"type": "object", "properties": {"items": {"type": "array", "default": [1]}}}
    assert render_error("{{#items}}" * 2000 + "{{/items}}" * 2000, config).code == "template_render_failed"


def test_sections_that_multiply_over_lists_stop_at_the_item_budget():
    config = {"type": "object", "properties": {"items": {"type": "array", "default": list(range(100))}}}
    started = time.monotonic()
    error = render_error('{"id": "' + "{{#items}}" * 6 + "x" + "{{/items}}" * 6 + '"}', config)
    assert (error.code, error.details["limit"]) == ("template_render_failed", MAX_SECTION_ITEMS)
    assert time.monotonic() - started < 10


def test_lists_within_the_budget_render_and_print_as_json():
    config = {"type": "object", "properties": {"items": {"type": "array", "default": [1, 2, 3]}}}
    app = render_marathon_app(metadata('{"id": "{{#items}}{{.}}{{/items}}", "all": {{items}}}', config))
    assert app == {"id": "123", "all": [1, 2, 3]}


def test_a_rendered_app_with_a_number_beyond_json_is_refused():
    assert render_error('{"id": "x", "cpus": ' + "9" * 5000 + "}").code == "json_number_too_large"


def test_invalid_rendered_json_says_where():
    error = render_error('{\n"id": {{name}}\n}')
    assert error.code == "template_invalid_json"
    assert (error.details["line"], error.details["text"]) == (2, '"id": x')


@pytest.mark.parametrize("schema, defaults", [
    # A list of types names no single placeholder: the option is left out.
    ({"properties": {"a": {"type": ["string", "null"]}}, "required": ["a"]}, {}),
    ({"properties": {"a": {"type": "string"}}, "required": 5}, {}),
    ({"properties": {"a": {"type": "string"}}, "required": [["a"], {"a": 1}, "a"]}, {"a": ""}),
    ({"properties": {"a": {"type": {"x": 1}}}, "required": ["a"]}, {}),
])
def test_odd_config_schemas_give_defaults_without_failing(schema, defaults):
    assert config_defaults(schema) == defaults
