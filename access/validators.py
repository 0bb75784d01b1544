"""Checks on what operators type in: DC/OS versions and version patterns of cluster rules."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from dcos_bundle.universe.rules import DCOS_VERSION, version_patterns


def validate_version_patterns(value: str) -> None:
    try:
        version_patterns(value)
    except ValueError as error:
        raise ValidationError(str(error), code="invalid_version_pattern") from None


def validate_dcos_version(value: str) -> None:
    if value and not DCOS_VERSION.match(value):
        raise ValidationError(f"{value!r} is not a DC/OS version: use major.minor or major.minor.patch (e.g. 2.2).",
                              code="invalid_dcos_version")
