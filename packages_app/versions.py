"""Ordering of package versions, so the default version is the highest one, not the latest upload.

The rule (documented in docs/catalogue-api.md): a version splits at ``.``, ``-`` and ``+`` into
parts, compared left to right; numeric parts compare as numbers and rank above words, words
compare case-insensitively; where one version runs out of parts first, the missing part ranks
between words and numbers. So ``1.10 > 1.9``, ``2.3.0-1.1.0 > 2.3.0`` (a packaging revision),
``1.0.0 > 1.0.0-beta`` (a pre-release), ``1.0.0-rc2 > 1.0.0-rc1``.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[.+-]")
_PIECES = re.compile(r"\d+|\D+")
_WORD, _MISSING, _NUMBER = 0, 1, 2


def version_key(version: str) -> tuple:
    key = []
    for part in _SEPARATORS.split(version):
        for piece in _PIECES.findall(part):
            key.append((_NUMBER, int(piece), "") if piece.isdigit() else (_WORD, 0, piece.lower()))
    return tuple(key)


def compare_padded(key: tuple, length: int) -> tuple:
    return key + ((_MISSING, 0, ""),) * (length - len(key))


def highest(versions: list[str]) -> str | None:
    if not versions:
        return None
    length = max(len(version_key(version)) for version in versions)
    return max(versions, key=lambda version: compare_padded(version_key(version), length))


def sorted_versions(versions: list[str]) -> list[str]:
    length = max((len(version_key(version)) for version in versions), default=0)
    return sorted(versions, key=lambda version: compare_padded(version_key(version), length))
