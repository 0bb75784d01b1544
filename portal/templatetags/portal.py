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
