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


_FACTORS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``700M``, ``4G``, ``4GiB`` or a byte count as bytes (powers of 1024); ValueError for anything else."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in _FACTORS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) == 0:
        raise ValueError(f"{text!r} is not a size: write a number of bytes, or one with K, M, G or T (e.g. 4G).")
    return int(number) * _FACTORS[unit]
