"""ZIP record formats shared by the readers of uploaded bundles: the local header, the general
purpose flags, the compression methods, and the extra field with its zip64 record.

Plain Python (no Django). Nothing here raises RegistryError: callers decide what a malformed
record means to them (a refusal for inspection, a reason to stop for an early scan).
"""

from __future__ import annotations

import struct
import zipfile
from collections import namedtuple
from collections.abc import Mapping

LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
LocalHeader = namedtuple(
    "LocalHeader",
    "signature version flags method time date crc compressed_size size name_length extra_length",
)
# The largest local header: fixed part, then name and extra field of at most 65535 bytes each.
MAX_LOCAL_HEADER_SIZE = LOCAL_HEADER.size + 0xFFFF + 0xFFFF

ENCRYPTED = 0x0001
DATA_DESCRIPTOR = 0x0008
PATCHED_DATA = 0x0020
STRONG_ENCRYPTION = 0x0040
UTF8_NAME = 0x0800
MASKED_HEADERS = 0x2000  # central directory encryption: local headers hold masked values
ENCRYPTION_FLAGS = ENCRYPTED | STRONG_ENCRYPTION | MASKED_HEADERS

STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
ZIP64_EXTRA = 0x0001
ZIP64_MARKER = 0xFFFFFFFF  # a 32-bit field whose value is in the zip64 extra field

_EXTRA_RECORD_HEADER = struct.Struct("<HH")


class ExtraRecordOverrun(ValueError):
    """An extra field record runs past the field's end."""

    def __init__(self, record: int):
        super().__init__(f"extra field record {record:#06x} runs past the field's end")
        self.record = record


def extra_records(extra: bytes) -> dict[int, bytes]:
    """An extra field's records by id (the first of each), read as zipfile reads them.

    zipfile ignores a tail too short for a record header; a record running past the end it
    refuses: ExtraRecordOverrun.
    """
    records: dict[int, bytes] = {}
    position = 0
    while position + 4 <= len(extra):
        kind, length = _EXTRA_RECORD_HEADER.unpack_from(extra, position)
        data = extra[position + 4:position + 4 + length]
        if len(data) < length:
            raise ExtraRecordOverrun(kind)
        records.setdefault(kind, bytes(data))
        position += 4 + length
    return records


def zip64_values(records: Mapping[int, bytes], values: tuple[int, ...]) -> tuple[int, ...] | None:
    """``values`` with each 0xFFFFFFFF replaced, in order, by the next 64-bit value of the zip64
    extra record; None if that record lacks values the 0xFFFFFFFF fields call for."""
    wanted = values.count(ZIP64_MARKER)
    if not wanted:
        return values
    data = records.get(ZIP64_EXTRA, b"")
    if len(data) < 8 * wanted:
        return None
    replacements = iter(struct.unpack_from(f"<{wanted}Q", data))
    return tuple(next(replacements) if value == ZIP64_MARKER else value for value in values)
