"""Sizes for people: what the CLI and the management commands print next to exact byte counts."""

from __future__ import annotations

UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(count: int) -> str:
    """``1536`` as ``1.5 KiB``; below a KiB, ``1023 bytes``."""
    size, unit = float(count), "bytes"
    for larger in UNITS:
        if size < 1024:
            break
        size, unit = size / 1024, larger
    return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
