"""Checks on what operators type in: DC/OS versions and version patterns of cluster rules."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

DCOS_VERSION = re.compile(r"^\d+(\.\d+){1,2}$")
# Universe versions are free-form ("2.3.0-1.1.0", "stub-universe"): a pattern is a version with * and ? wildcards.
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._+~*?-]+$")


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


def validate_version_patterns(value: str) -> None:
    try:
        version_patterns(value)
    except ValueError as error:
        raise ValidationError(str(error), code="invalid_version_pattern") from None


def validate_dcos_version(value: str) -> None:
    if value and not DCOS_VERSION.match(value):
        raise ValidationError(f"{value!r} is not a DC/OS version: use major.minor or major.minor.patch (e.g. 2.2).",
                              code="invalid_dcos_version")
