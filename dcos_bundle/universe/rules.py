"""The rule language that says which package versions are chosen: package names, each with version patterns (a
version with ``*`` and ``?`` wildcards, matched against the whole version), and a DC/OS version's cutoff.

Plain Python: a cluster's allow-list (``access.clusters``) and ``dcos-registry mirror`` read the same rules.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

# Universe versions are free-form ("2.3.0-1.1.0", "stub-universe"): a pattern is a version with * and ? wildcards.
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._+~*?-]+$")
DCOS_VERSION = re.compile(r"^\d+(\.\d+){1,2}$")

# package name -> version patterns (empty: every version), sorted by name so that equal rules are equal
Rules = tuple[tuple[str, tuple[str, ...]], ...]


def version_patterns(text: str) -> tuple[str, ...]:
    """The patterns of a comma-separated list (empty: none); ValueError for an item no version could match."""
    if not text.strip():
        return ()
    patterns = tuple(item.strip() for item in text.split(","))
    for pattern in patterns:
        if not VERSION_PATTERN.match(pattern):
            raise ValueError(f"{pattern!r} is not a version pattern: use versions with * and ? wildcards, "
                             "separated by commas (e.g. 2.3.0, 2.4.*).")
    return patterns


def package_rules(specs: list[str]) -> Rules:
    """Rules from ``NAME`` or ``NAME=PATTERN,PATTERN`` items, as the command line takes them."""
    rules = {}
    for spec in specs:
        name, _, patterns = spec.partition("=")
        rules[name.strip()] = version_patterns(patterns)
    return tuple(sorted(rules.items()))


def allows(rules: Rules, name: str, version: str) -> bool:
    """Whether the rules choose this version of this package."""
    for package, patterns in rules:
        if package == name:
            return not patterns or any(fnmatchcase(version, pattern) for pattern in patterns)
    return False


def pattern_regex(pattern: str) -> str:
    """A whole-version wildcard pattern as a regular expression PostgreSQL and SQLite read alike."""
    return "^" + "".join({"*": ".*", "?": "."}.get(char) or re.escape(char) for char in pattern) + "$"


def dcos_version(text: str) -> tuple[int, ...]:
    """``2.2`` as (2, 2); ValueError for anything but major.minor or major.minor.patch."""
    if not DCOS_VERSION.match(text):
        raise ValueError(f"{text!r} is not a DC/OS version: use major.minor or major.minor.patch (e.g. 2.2).")
    return tuple(int(part) for part in text.split("."))


def release_key(value: str) -> tuple[int, ...]:
    """Loose version order for ``minDcosReleaseVersion`` ("1.10" > "1.9"; "1.10" < "1.10.0"), as LooseVersion."""
    return tuple(int(part) for part in value.split("."))


def runs_on(min_dcos_release_version: str, dcos: tuple[int, ...] | None) -> bool:
    """Whether a package that needs ``min_dcos_release_version`` (empty: any) runs on DC/OS ``dcos`` (None: any)."""
    return dcos is None or not min_dcos_release_version or release_key(min_dcos_release_version) <= dcos
