"""Filters the pages share."""

import json

from django import template

from dcos_bundle.sizes import human_size as _human_size

register = template.Library()


@register.filter
def human_size(count) -> str:
    return "-" if count is None else _human_size(int(count))


@register.filter
def as_json(value) -> str:
    """A value as the package wrote it in JSON (a default of ``true``, ``null``, ``"text"``)."""
    return json.dumps(value, ensure_ascii=False)


@register.filter
def web_url(value) -> str:
    """``value`` if it is an http(s) URL, else "": a package's metadata never puts a javascript: link on a page."""
    return value if isinstance(value, str) and value.lower().startswith(("https://", "http://")) else ""
