"""JSON documents of a bundle: what Python's json reads but the registry cannot keep is refused, each with its code."""

from __future__ import annotations

import io
import json

import pytest

from dcos_bundle.documents import MAX_JSON_DEPTH, parse_json, read_capped
from dcos_bundle.errors import RegistryError


def refused(data, code: str) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        parse_json(data, "doc.json", member="doc.json")
    assert caught.value.code == code, caught.value.message
    assert caught.value.details["member"] == "doc.json"
    assert caught.value.message.startswith("doc.json")
    return caught.value


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_plain_json_reads_as_json_does():
    text = '{"a": [1, -2, 3.5, 1e308, true, null, "é\\u00e9"], "b": {}}'
    assert parse_json(text.encode(), "doc.json") == json.loads(text)


def test_a_utf8_byte_order_mark_is_allowed():
    assert parse_json(b"\xef\xbb\xbf{}", "doc.json") == {}


@pytest.mark.parametrize("data", [b"{not json", b'{"a": "\xff"}', b"[1,]", b'"\\ud800"x'])
def test_broken_json_is_invalid_json(data):
    refused(data, "invalid_json")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    assert constant in refused(f'{{"a": {constant}}}', "invalid_json").message


@pytest.mark.parametrize("number", ["1" * 5000, "-" + "9" * 400, str(2 * 10**308), "1e400", "-1.5e309"])
def test_numbers_beyond_a_double_are_refused(number):
    error = refused(f'{{"n": {number}}}', "json_number_too_large")
    assert len(error.message) < 300  # thousands of digits are not repeated back


def test_the_largest_numbers_a_double_holds_are_kept():
    largest = int(1.7976931348623157e308)
    assert parse_json(f"[{largest}, -{largest}, 1.7976931348623157e308]", "doc.json")[0] == largest


def test_nesting_is_limited_to_the_documented_depth():
    assert parse_json(nested(MAX_JSON_DEPTH), "doc.json")
    error = refused(nested(MAX_JSON_DEPTH + 1), "json_too_deep")
    assert error.details["at"] == "/0" * MAX_JSON_DEPTH
    assert error.details["limit"] == MAX_JSON_DEPTH


def test_nesting_deeper_than_the_interpreter_recurses_is_refused_too():
    refused(nested(100_000), "json_too_deep")
    refused('{"a":' * 50_000 + "1" + "}" * 50_000, "json_too_deep")


@pytest.mark.parametrize("text, at", [
    ('{"tags": ["ok", "nul \\u0000 here"]}', "/tags/1"),
    ('{"a": {"b\\u0000": 1}}', "/a"),
    ('"\\u0000"', ""),
])
def test_nul_characters_are_refused_where_they_are(text, at):
    error = refused(text, "unsupported_character")
    assert error.details["at"] == at
    assert "NUL" in error.message


@pytest.mark.parametrize("text, at", [('{"a": ["x", "\\ud800"]}', "/a/1"), ('{"\\udfff": 1}', "")])
def test_unpaired_surrogates_are_refused(text, at):
    error = refused(text, "unsupported_character")
    assert error.details["at"] == at
    assert "surrogate" in error.message


def test_paired_surrogates_are_text():
    assert parse_json('["\\ud83d\\ude00"]', "doc.json") == ["\U0001F600"]


class CountingStream(io.RawIOBase):
    """An endless stream of JSON whitespace that counts what was read from it."""

    def __init__(self):
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b" " * len(buffer)
        self.given += len(buffer)
        return len(buffer)


def test_read_capped_stops_just_past_the_cap():
    stream = CountingStream()
    with pytest.raises(RegistryError) as caught:
        read_capped(stream, "config", limit=1000, member="config")
    assert caught.value.code == "member_too_large"
    assert caught.value.details == {"member": "config", "limit": 1000}
    assert stream.given == 1001


def test_read_capped_reads_a_document_to_its_end():
    assert read_capped(io.BytesIO(b"x" * 1000), "doc", limit=1000) == b"x" * 1000
