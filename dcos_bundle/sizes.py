"""Sizes for people: what the CLI and the management commands print next to exact byte counts."""

from __future__ import annotations

import re

UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(count: int) -> str:
    """``1536`` as ``1.5 KiB``; below a KiB, ``1023 bytes``."""
    size, unit = float(count), "bytes"
    for larger in UNITS:
        if size < 1024:
            break
        size, unit = size / 1024, larger
    return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"



_SIZE = re.compile(r"^(\d+)([KMGT]?)i?B?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``8388608``, ``8M``, ``512KiB``, ``4G``: a positive number of bytes (K, M, G, T in powers of 1024)."""
    match = _SIZE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a positive size such as 8388608, 512K or 8M")
    return int(match.group(1)) * 1024 ** " KMGT".index(match.group(2).upper() or " ")
