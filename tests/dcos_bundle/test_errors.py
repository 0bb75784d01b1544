"""Error codes are one registry: docs/errors.md lists exactly ErrorCode's members with their statuses, the source names
no code that does not exist, and RegistryError takes nothing but an ErrorCode."""

from __future__ import annotations

import ast
import re
from http import HTTPStatus
from pathlib import Path

import pytest

from dcos_bundle.errors import ErrorCode, RegistryError

ROOT = Path(__file__).resolve().parents[2]
CODE_ROW = re.compile(r"^\| `([a-z0-9_]+)` \| (\d{3}) \|", re.MULTILINE)


def test_the_errors_page_lists_every_code_once_with_its_status():
    rows = CODE_ROW.findall((ROOT / "docs" / "errors.md").read_text())
    listed = [code for code, _ in rows]
    assert sorted(listed) == sorted({code for code in listed}), "a code is listed twice"
    assert {code: int(status) for code, status in rows} == {code.value: int(code.status) for code in ErrorCode}


def wrong_codes(source: str) -> list[str]:
    """``ErrorCode.<NAME>`` and ``ErrorCode("<value>")`` that name no code, and RegistryErrors raised with a string."""
    wrong = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _is_error_code(node.value):
            if node.attr not in ErrorCode.__members__ and (node.attr.isupper() or not hasattr(ErrorCode, node.attr)):
                wrong.append((node.lineno, f"ErrorCode.{node.attr}"))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            value = node.args[0].value
            if _is_error_code(node.func) and value not in ErrorCode._value2member_map_:
                wrong.append((node.lineno, f"ErrorCode({value!r})"))
            elif _names(node.func, "RegistryError") and isinstance(value, str):
                wrong.append((node.lineno, f"RegistryError({value!r}, ...)"))
    return [f"{what} (line {line})" for line, what in sorted(wrong)]


def _is_error_code(node: ast.expr) -> bool:
    return _names(node, "ErrorCode")


def _names(node: ast.expr, name: str) -> bool:
    return (isinstance(node, ast.Name) and node.id == name) or (isinstance(node, ast.Attribute) and node.attr == name)


def test_a_misspelt_code_is_found():
    source = (
        "from dcos_bundle import errors\n"
        "raise RegistryError(ErrorCode.NOT_A_ZIPP, 'x')\n"
        "code = errors.ErrorCode.VERSION_CONFLIKT\n"
        "code = ErrorCode('version_conflikt')\n"
        "raise RegistryError('not_a_zip', 'x')\n"
        "fine = ErrorCode.NOT_A_ZIP, ErrorCode('not_a_zip'), ErrorCode.NOT_A_ZIP.status, ErrorCode.__members__\n"
    )
    assert wrong_codes(source) == [
        "ErrorCode.NOT_A_ZIPP (line 2)", "ErrorCode.VERSION_CONFLIKT (line 3)", "ErrorCode('version_conflikt') (line 4)",
        "RegistryError('not_a_zip', ...) (line 5)",
    ]


def project_sources() -> list[Path]:
    # Hidden directories hold the virtualenv and caches, not the project's source.
    return sorted(
        path for path in ROOT.rglob("*.py") if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    )


def test_every_code_the_source_names_exists():
    sources = project_sources()
    assert ROOT / "dcos_bundle" / "errors.py" in sources and ROOT / "tests" / "dcos_bundle" / "test_errors.py" in sources
    wrong = {str(path.relative_to(ROOT)): found for path in sources if (found := wrong_codes(path.read_text()))}
    assert wrong == {}


@pytest.mark.parametrize("code", ["not_a_zip", "no_such_code", None])
def test_registry_error_refuses_anything_but_an_error_code(code):
    with pytest.raises(TypeError, match="is not an ErrorCode"):
        RegistryError(code, "A sentence.")


def test_registry_error_carries_its_code_status_and_details():
    error = RegistryError(ErrorCode.VERSION_CONFLICT, "Version 1.0 of package hello is already published.", package="hello")
    assert error.status == HTTPStatus.CONFLICT
    assert error.to_json() == {
        "code": "version_conflict", "message": "Version 1.0 of package hello is already published.",
        "details": {"package": "hello"},
    }
