"""Ordering of package versions, so the default version is the highest one, not the latest upload.

The rule (documented in docs/catalogue-api.md): a version splits at ``.``, ``-`` and ``+`` into
parts, compared left to right; numeric parts compare as numbers and rank above words, words
compare case-insensitively; where one version runs out of parts first, the missing part ranks
between words and numbers. So ``1.10 > 1.9``, ``2.3.0-1.1.0 > 2.3.0`` (a packaging revision),
``1.0.0 > 1.0.0-beta`` (a pre-release), ``1.0.0-rc2 > 1.0.0-rc1``. Versions the rule finds equal
(``1.0`` and ``1.00``) are ordered as strings, so the order never depends on where the list came from.

An operator may pin a package's default version (when a package's version scheme changed and
a newer release carries a lower number): the pinned version then ranks above all others.
"""

from __future__ import annotations

import functools
import re
from typing import Iterable

_SEPARATORS = re.compile(r"[.+-]")
_PIECES = re.compile(r"\d+|\D+")
_WORD, _MISSING, _NUMBER = 0, 1, 2


# Listings sort the same version numbers over and over (each package's, on every page): parse each once.
@functools.lru_cache(maxsize=100_000)
def version_key(version: str) -> tuple:
    key = []
    for part in _SEPARATORS.split(version):
        for piece in _PIECES.findall(part):
            key.append((_NUMBER, int(piece), "") if piece.isdigit() else (_WORD, 0, piece.lower()))
    return tuple(key)


def compare_padded(key: tuple, length: int) -> tuple:
    return key + ((_MISSING, 0, ""),) * (length - len(key))


def sorted_versions(versions: Iterable[str]) -> list[str]:
    """Lowest first."""
    versions = list(versions)
    length = max((len(version_key(version)) for version in versions), default=0)
    return sorted(versions, key=lambda version: (compare_padded(version_key(version), length), version))


def highest(versions: Iterable[str]) -> str | None:
    ordered = sorted_versions(versions)
    return ordered[-1] if ordered else None


def release_order(versions: Iterable[str], pinned: str = "") -> list[str]:
    """A package's versions as its repository numbers them (``releaseVersion`` 0 first): by the rule above,
    with the pinned version, when it is among them, last. The last is the default version."""
    ordered = sorted_versions(versions)
    if pinned in ordered:
        ordered.remove(pinned)
        ordered.append(pinned)
    return ordered


def default_version(versions: Iterable[str], pinned: str = "") -> str | None:
    ordered = release_order(versions, pinned)
    return ordered[-1] if ordered else None
