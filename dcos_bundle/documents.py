"""JSON documents read from a bundle, held to what the registry can keep and serve.

Python's json module reads more than JSON, and more than the catalogue can store: NaN and
Infinity, integers of any length (until 4,300 digits, then a ValueError), nesting down to the
interpreter's recursion limit (then a RecursionError), strings holding NUL (PostgreSQL text
refuses it) or unpaired surrogates (no Unicode text, so no UTF-8). ``parse_json`` refuses each
with its own code; ``read_capped`` reads a document without ever holding more than its cap.

Plain Python (no Django).
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.format import json_pointer

# Metadata, manifest.json, the image index, image manifests and configs: documents, not payloads.
MAX_JSON_BYTES = 16 * 1024 * 1024
# Arrays and objects inside each other; the deepest package of the Universe repository nests 19.
MAX_JSON_DEPTH = 64
# A number must fit a double, as JSON parsers of most languages read numbers (RFC 8259, section 6).
MAX_NUMBER = sys.float_info.max
_MAX_INTEGER_DIGITS = len(str(int(MAX_NUMBER)))
_PIECE_BYTES = 64 * 1024


class _Refused(Exception):
    """A number json's hooks refuse; ``parse_json`` says in which document."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code


def too_large(what: str, size: int | None = None, limit: int = MAX_JSON_BYTES, **details) -> RegistryError:
    size_text = f"{size} bytes, " if size is not None else ""
    return RegistryError(
        ErrorCode.MEMBER_TOO_LARGE, f"{what} is {size_text}larger than the {limit} bytes a JSON document may have.",
        **details, **({"size": size} if size is not None else {}), limit=limit,
    )


def read_capped(stream: BinaryIO, what: str, limit: int = MAX_JSON_BYTES, **details) -> bytearray:
    """The stream's bytes to its end, or MEMBER_TOO_LARGE as soon as more than ``limit`` came.

    Read in pieces: a small document costs its size, a huge one no more than the cap.
    """
    data = bytearray()
    while piece := stream.read(min(_PIECE_BYTES, limit + 1 - len(data))):
        data += piece
        if len(data) > limit:
            raise too_large(what, limit=limit, **details)
    return data


def parse_json(data: bytes | bytearray | str, what: str, **details) -> Any:
    """The JSON document in ``data`` (UTF-8), or RegistryError saying why the registry cannot keep it.

    ``what`` names the document in messages ("metadata.json"); ``details`` go into every error.
    """
    try:
        text = data if isinstance(data, str) else data.decode("utf-8-sig")
        document = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except UnicodeDecodeError as error:
        raise RegistryError(ErrorCode.INVALID_JSON, f"{what} is not UTF-8 text: {error}.", **details) from None
    except json.JSONDecodeError as error:
        raise RegistryError(
            ErrorCode.INVALID_JSON, f"{what} is not valid JSON: {error}.", **details, line=error.lineno,
            column=error.colno,
        ) from None
    except _Refused as refused:
        raise RegistryError(refused.code, f"{what}: {refused}", **details) from None
    except RecursionError:
        raise _too_deep(what, details) from None
    _check_tree(document, what, details)
    return document


def _integer(text: str) -> int:
    # Counted before converting: int() of thousands of digits is slow, and past 4,300 refused.
    if len(text.lstrip("-")) > _MAX_INTEGER_DIGITS or abs(value := int(text)) > MAX_NUMBER:
        shown = text if len(text) <= 40 else f"{text[:20]}…({len(text)} digits)"
        raise _Refused(ErrorCode.JSON_NUMBER_TOO_LARGE, f"the number {shown} is beyond what a JSON number may be "
                       f"(at most {MAX_NUMBER:.6g}).")
    return value


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        shown = text if len(text) <= 40 else f"{text[:20]}…"
        raise _Refused(ErrorCode.JSON_NUMBER_TOO_LARGE, f"the number {shown} is beyond what a JSON number may be "
                       f"(at most {MAX_NUMBER:.6g}).")
    return value


def _constant(name: str):
    raise _Refused(ErrorCode.INVALID_JSON, f"{name} is not JSON (JSON has no NaN or Infinity).")


def _too_deep(what: str, details: dict, at: str | None = None) -> RegistryError:
    where = {"at": at} if at is not None else {}
    return RegistryError(
        ErrorCode.JSON_TOO_DEEP, f"{what} nests arrays and objects more than {MAX_JSON_DEPTH} deep.",
        **details, **where, limit=MAX_JSON_DEPTH,
    )


def _pointer(where: tuple | None) -> str:
    """The JSON pointer of a place, from the (parent, key) chain ``_check_tree`` keeps."""
    parts = []
    while where:
        where, key = where
        parts.append(key)
    return json_pointer(*reversed(parts))


def _check_tree(document: Any, what: str, details: dict) -> None:
    """Depth and text of every value, without recursion: the document may be as deep as json could read."""
    stack: list[tuple[Any, int, tuple | None]] = [(document, 0, None)]
    while stack:
        value, enclosing, where = stack.pop()
        if isinstance(value, str):
            _check_text(value, what, details, where)
        elif isinstance(value, (dict, list)):
            if enclosing >= MAX_JSON_DEPTH:
                raise _too_deep(what, details, _pointer(where))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, what, details, where, is_key=True)
                stack.append((item, enclosing + 1, (where, key)))


def is_storable_text(text: str) -> bool:
    """Whether PostgreSQL can store ``text``: no NUL, and UTF-8 can encode it (no unpaired surrogate)."""
    if "\0" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(text: str, what: str, details: dict, where: tuple | None, is_key: bool = False) -> None:
    if is_storable_text(text):
        return
    if "\0" in text:
        problem = "a NUL character (\\u0000), which the registry cannot store"
    else:
        surrogate = next(char for char in text if 0xD800 <= ord(char) <= 0xDFFF)
        problem = f"an unpaired surrogate ({surrogate!r}), which is no Unicode text"
    place = f"a key of {_pointer(where) or 'the document'}" if is_key else (_pointer(where) or "the document")
    raise RegistryError(
        ErrorCode.UNSUPPORTED_CHARACTER, f"{what} holds {problem}, in {place}.", **details, at=_pointer(where),
    )
