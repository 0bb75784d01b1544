"""The one yes/no parser of settings, query parameters and form fields."""

from __future__ import annotations

import pytest

from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.flags import parse_bool


@pytest.mark.parametrize("word", ["1", "true", "True", "YES", "on", " on "])
def test_yes_words(word):
    assert parse_bool(word, "replace") is True


@pytest.mark.parametrize("word", ["0", "false", "FALSE", "no", "Off"])
def test_no_words(word):
    assert parse_bool(word, "replace") is False


@pytest.mark.parametrize("value", [None, "", "  "])
def test_absent_or_empty_is_the_default(value):
    assert parse_bool(value, "replace", default=True) is True
    assert parse_bool(value, "replace") is None


def test_json_booleans_pass_through():
    assert parse_bool(True, "replace") is True and parse_bool(False, "replace", default=True) is False


@pytest.mark.parametrize("word", ["maybe", "y", "2", "truth"])
def test_anything_else_is_refused_naming_the_parameter(word):
    with pytest.raises(RegistryError) as refused:
        parse_bool(word, "replace")
    assert refused.value.code == ErrorCode.INVALID_REQUEST and refused.value.status == 400
    assert refused.value.message.startswith(f"replace={word!r} is neither yes nor no")
    assert refused.value.details == {"field": "replace", "value": word}
