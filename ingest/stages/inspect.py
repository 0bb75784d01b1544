"""Inspect: open an uploaded bundle without trusting it.

Only the ZIP structure is read (the end records, the central directory and each member's local
header), never member data. Refused: ZIP bombs (by ratio, size, count or overlapping members),
unsafe member names and types, encryption, compression other than stored and deflated, data
hidden before, between or after the members, and headers that disagree with each other. What
is accepted, Python's zipfile reads exactly as inspected; later stages stream members through
it, so the declared sizes bound what is ever inflated, and CRCs are checked as members are read.

Plain Python (no Django).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
import unicodedata
import zipfile
from collections import namedtuple
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.zip_records import (
    DATA_DESCRIPTOR,
    DEFLATED,
    ENCRYPTION_FLAGS,
    LOCAL_HEADER,
    LOCAL_HEADER_SIGNATURE,
    PATCHED_DATA,
    STORED,
    UTF8_NAME,
    ZIP64_EXTRA,
    ZIP64_MARKER,
    ExtraRecordOverrun,
    LocalHeader,
    extra_records,
    zip64_values,
)

CENTRAL_ENTRY_SIGNATURE = b"PK\x01\x02"
END_RECORD_SIGNATURE = b"PK\x05\x06"
ZIP64_END_RECORD_SIGNATURE = b"PK\x06\x06"
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
DATA_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"

CENTRAL_ENTRY = struct.Struct("<4s2B5H3L5H2L")
CentralEntry = namedtuple(
    "CentralEntry",
    "signature version create_system version_needed flags method time date crc compressed_size size"
    " name_length extra_length comment_length disk internal_attr external_attr offset",
)
END_RECORD = struct.Struct("<4s4H2LH")
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
# The zip64 end record's size field counts the bytes after itself; zipfile assumes no
# "extensible data", so any other size is a record zipfile would misread.
ZIP64_END_RECORD_BODY = ZIP64_END_RECORD.size - 12

# The flags that change how a member's bytes are read: local header and central entry must agree.
READING_FLAGS = ENCRYPTION_FLAGS | DATA_DESCRIPTOR | UTF8_NAME

UNIX = 3
# What each of the end record's six numbers holds when the zip64 end record has the value.
END_RECORD_ZIP64_MARKERS = (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, ZIP64_MARKER, ZIP64_MARKER)

# How far back from the end to look for a misplaced end record: enough to tell a ZIP with
# something appended (a comment, a tar) from one that was cut off.
END_RECORD_SEARCH_BYTES = 1024 * 1024
DRIVE_LETTER = re.compile(r"[A-Za-z]:")
SPECIAL_FILE_TYPES = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class InspectLimits:
    max_members: int = 100_000  # central directory entries, directory entries included
    max_member_bytes: int = 64 * 1024**3  # uncompressed, per member
    max_total_bytes: int = 256 * 1024**3  # uncompressed, all members
    max_ratio: float = 200.0  # uncompressed/compressed, per deflated member
    max_name_length: int = 1024  # bytes


@dataclass(frozen=True)
class MemberInfo:
    name: str
    offset: int  # of the local header
    data_offset: int
    compressed_size: int
    size: int
    crc: int
    stored: bool


@dataclass(frozen=True)
class Inventory:
    members: dict[str, MemberInfo]  # by name, in file order; no directory entries
    total_bytes: int  # uncompressed


@dataclass(frozen=True)
class _Entry:
    """A central directory entry, checked on its own."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    offset: int
    is_directory: bool


def inspect_bundle(bundle: str | os.PathLike | BinaryIO, limits: InspectLimits = InspectLimits()) -> Inventory:
    """The bundle's members, or RegistryError saying what makes it unsafe to open.

    ``bundle`` is a path or a seekable file (a staged bundle read by range), which is left open.
    """
    with open(bundle, "rb") if isinstance(bundle, (str, os.PathLike)) else contextlib.nullcontext(bundle) as file:
        file_size = file.seek(0, os.SEEK_END)
        if file_size == 0:
            raise RegistryError(ErrorCode.EMPTY_BUNDLE, "The bundle is empty (0 bytes).")
        directory_offset, directory_size, count = _read_end_records(file, file_size)
        if count > limits.max_members:
            raise RegistryError(
                ErrorCode.TOO_MANY_MEMBERS, f"The bundle has {count} members; the limit is {limits.max_members}.",
                count=count, limit=limits.max_members,
            )
        entries = _read_central_directory(file, directory_offset, directory_size, count, limits)
        members = _read_local_headers(file, entries, directory_offset)
        _check_zipfile_agrees(file, entries)
    return Inventory(members, sum(member.size for member in members.values()))


def _read_end_records(file: BinaryIO, file_size: int) -> tuple[int, int, int]:
    """The central directory's offset, size and entry count, from end records ending the file."""
    end_at = file_size - END_RECORD.size
    record = _read_at(file, end_at, END_RECORD.size) if end_at >= 0 else b""
    # Where zipfile looks first: the last 22 bytes, holding an end record with no comment.
    if not (record.startswith(END_RECORD_SIGNATURE) and record.endswith(b"\0\0")):
        _refuse_missing_end_record(file, file_size)
    fields = END_RECORD.unpack(record)[1:7]
    end_records_start = end_at
    locator_at = end_at - ZIP64_LOCATOR.size
    locator = _read_at(file, locator_at, ZIP64_LOCATOR.size) if locator_at >= 0 else b""
    zip64_offset = None
    if locator.startswith(ZIP64_LOCATOR_SIGNATURE):
        end_records_start = locator_at - ZIP64_END_RECORD.size
        fields, zip64_offset = _read_zip64_end_record(file, end_records_start, fields, locator)
    disk, directory_disk, disk_entries, count, directory_size, directory_offset = fields
    if disk or directory_disk or disk_entries != count:
        raise RegistryError(
            ErrorCode.TRUNCATED_ZIP, "The bundle is one part of a ZIP split over several files.", disk=disk,
        )
    # zipfile accepts a ZIP whose offsets are all shifted by data put in front of it.
    data_before = end_records_start - directory_size - directory_offset
    if data_before > 0:
        raise RegistryError(
            ErrorCode.ZIP_POLYGLOT, f"{data_before} bytes of other data precede the ZIP archive.",
            offset=0, length=data_before,
        )
    if data_before < 0:
        raise RegistryError(
            ErrorCode.TRUNCATED_ZIP, "The central directory runs past the end records: part of the file is missing.",
            directory_offset=directory_offset, directory_size=directory_size, end_records_offset=end_records_start,
        )
    if zip64_offset is not None and zip64_offset != end_records_start:
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH,
            f"The zip64 locator points at offset {zip64_offset}, but the zip64 end record is at {end_records_start}.",
            offset=zip64_offset, expected=end_records_start,
        )
    return directory_offset, directory_size, count


def _refuse_missing_end_record(file: BinaryIO, file_size: int) -> NoReturn:
    """Why there is no end record at the very end: something follows it, the file was cut, or it is no ZIP."""
    tail_start = max(file_size - END_RECORD_SEARCH_BYTES, 0)
    tail = _read_at(file, tail_start, file_size - tail_start)
    found = tail.rfind(END_RECORD_SIGNATURE)
    if found >= 0 and found + END_RECORD.size <= len(tail):
        end = tail_start + found + END_RECORD.size
        comment_length = END_RECORD.unpack_from(tail, found)[-1]
        what = "an archive comment" if comment_length == file_size - end else "appended data"
        raise RegistryError(
            ErrorCode.ZIP_TRAILING_DATA, f"{file_size - end} bytes ({what}) follow the ZIP's end record.",
            offset=end, length=file_size - end, comment_length=comment_length,
        )
    if _read_at(file, 0, len(LOCAL_HEADER_SIGNATURE)) == LOCAL_HEADER_SIGNATURE:
        raise RegistryError(
            ErrorCode.TRUNCATED_ZIP, "The bundle starts like a ZIP but has no end of central directory: it was cut off.",
            size=file_size,
        )
    raise RegistryError(ErrorCode.NOT_A_ZIP, "The bundle is not a ZIP archive.", size=file_size)


def _read_zip64_end_record(file: BinaryIO, at: int, fields: tuple, locator: bytes) -> tuple[tuple, int]:
    """The end record's fields as the zip64 end record gives them, and where the locator says it is."""
    _, locator_disk, record_offset, disks = ZIP64_LOCATOR.unpack(locator)
    record = _read_at(file, at, ZIP64_END_RECORD.size) if at >= 0 else b""
    if not record.startswith(ZIP64_END_RECORD_SIGNATURE):
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, "The zip64 locator is not preceded by a zip64 end record.", offset=at,
        )
    _, body_size, _, _, *zip64_fields = ZIP64_END_RECORD.unpack(record)
    if body_size != ZIP64_END_RECORD_BODY:
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, f"The zip64 end record is {body_size + 12} bytes; only the plain "
            f"{ZIP64_END_RECORD.size}-byte record is supported.", size=body_size + 12,
        )
    # Readers that ignore zip64 use the plain end record: it must say the same, or "see zip64".
    pairs = zip(fields, zip64_fields, END_RECORD_ZIP64_MARKERS)
    if any(plain not in (value, marker) for plain, value, marker in pairs):
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, "The end record and the zip64 end record disagree.",
            end_record=list(fields), zip64_end_record=zip64_fields,
        )
    if locator_disk or disks > 1:
        raise RegistryError(ErrorCode.TRUNCATED_ZIP, "The bundle is one part of a ZIP split over several files.", disks=disks)
    return tuple(zip64_fields), record_offset


def _read_central_directory(
    file: BinaryIO, offset: int, size: int, count: int, limits: InspectLimits
) -> list[_Entry]:
    file.seek(offset)
    entries, names = [], set()
    for _ in range(count):
        entry = _read_central_entry(file, limits)
        if entry.name in names:
            raise RegistryError(ErrorCode.DUPLICATE_MEMBER, f"The bundle holds {entry.name} twice.", member=entry.name)
        names.add(entry.name)
        entries.append(entry)
    if file.tell() != offset + size:
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH,
            f"The end record declares {count} members in {size} bytes of central directory, "
            f"but they take {file.tell() - offset}.",
            count=count, declared_size=size, actual_size=file.tell() - offset,
        )
    total = sum(entry.size for entry in entries)
    if total > limits.max_total_bytes:
        raise RegistryError(
            ErrorCode.BUNDLE_TOO_LARGE, f"The bundle's members add up to {total} bytes; the limit is {limits.max_total_bytes}.",
            size=total, limit=limits.max_total_bytes,
        )
    return entries


def _read_central_entry(file: BinaryIO, limits: InspectLimits) -> _Entry:
    fixed = file.read(CENTRAL_ENTRY.size)
    if len(fixed) < CENTRAL_ENTRY.size or not fixed.startswith(CENTRAL_ENTRY_SIGNATURE):
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, "The central directory holds fewer entries than the end record declares.",
            offset=file.tell() - len(fixed),
        )
    header = CentralEntry._make(CENTRAL_ENTRY.unpack(fixed))
    raw_name = file.read(header.name_length)
    extra = file.read(header.extra_length)
    file.seek(header.comment_length, os.SEEK_CUR)
    name = _member_name(raw_name, header.flags, limits.max_name_length)
    _check_encryption_and_compression(name, header.flags, header.method)
    size, compressed_size, offset = _zip64_values(
        name, "central directory entry", extra, (header.size, header.compressed_size, header.offset)
    )
    is_directory = _is_directory(name, header, size)
    if size > limits.max_member_bytes:
        raise RegistryError(
            ErrorCode.MEMBER_TOO_LARGE, f"{name} is {size} bytes uncompressed; the limit is {limits.max_member_bytes}.",
            member=name, size=size, limit=limits.max_member_bytes,
        )
    # Checked per member: the overall ratio can be no higher than the highest member's.
    if header.method == DEFLATED and size > limits.max_ratio * compressed_size:
        raise RegistryError(
            ErrorCode.ZIP_BOMB, f"{name} inflates {compressed_size} bytes to {size}, more than {limits.max_ratio:g} times.",
            member=name, size=size, compressed_size=compressed_size, limit=limits.max_ratio,
        )
    if header.method == STORED and size != compressed_size:
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH,
            f"{name} is stored, yet declares {compressed_size} bytes compressed and {size} uncompressed.",
            member=name, size=size, compressed_size=compressed_size,
        )
    return _Entry(
        name, raw_name, header.flags, header.method, header.crc, compressed_size, size, offset, is_directory
    )


def _member_name(raw: bytes, flags: int, max_length: int) -> str:
    shown = raw.decode("utf-8", "backslashreplace")
    if len(raw) > max_length:
        raise RegistryError(
            ErrorCode.UNSAFE_MEMBER_NAME, f"A member name is {len(raw)} bytes long; the limit is {max_length}.",
            member=shown[:max_length] + "…", length=len(raw), limit=max_length,
        )
    try:
        # Without the UTF-8 flag a name is in a legacy code page: only ASCII reads the same everywhere.
        name = raw.decode("utf-8" if flags & UTF8_NAME else "ascii")
    except UnicodeDecodeError:
        problem = "is not valid UTF-8" if flags & UTF8_NAME else "is not ASCII, and not flagged as UTF-8"
        raise RegistryError(ErrorCode.UNSAFE_MEMBER_NAME, f"Member name {shown!r} {problem}.", member=shown) from None
    problem = _name_problem(name)
    if problem:
        raise RegistryError(ErrorCode.UNSAFE_MEMBER_NAME, f"Member name {name!r} {problem}.", member=name)
    return name


def _name_problem(name: str) -> str | None:
    """Why a member name is unsafe to use as a relative path, on any system, or None."""
    if any(unicodedata.category(char) == "Cc" for char in name):
        return "holds a NUL or control character"
    if "\\" in name:
        return "holds a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if DRIVE_LETTER.match(name):
        return "starts with a drive letter"
    parts = name.removesuffix("/").split("/")
    if "" in parts:
        return "has an empty path component"
    if ".." in parts:
        return "climbs out of its directory with '..'"
    if "." in parts:
        # "a/./b" would be a second name for "a/b", slipping past the duplicate check.
        return "has a '.' component"
    return None


def _check_encryption_and_compression(name: str, flags: int, method: int) -> None:
    if flags & ENCRYPTION_FLAGS:
        raise RegistryError(ErrorCode.ENCRYPTED_MEMBER, f"{name} is encrypted.", member=name, flags=flags)
    if method not in (STORED, DEFLATED) or flags & PATCHED_DATA:
        how = "patched data (flag bit 5)" if flags & PATCHED_DATA else f"compression method {method}"
        raise RegistryError(
            ErrorCode.UNSUPPORTED_COMPRESSION, f"{name} uses {how}; only stored (0) and deflated (8) are accepted.",
            member=name, method=method, flags=flags,
        )


def _is_directory(name: str, header: CentralEntry, size: int) -> bool:
    """Whether the entry is a directory; anything but directories and regular files is refused."""
    mode = header.external_attr >> 16 if header.create_system == UNIX else 0
    # Some writers (zipfile's writestr among them) leave the type bits 0 for regular files.
    kind = stat.S_IFMT(mode)
    is_directory = name.endswith("/")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        description = SPECIAL_FILE_TYPES.get(kind, f"of unknown type {kind:#o}")
        raise RegistryError(ErrorCode.UNSAFE_MEMBER_TYPE, f"{name} is {description}.", member=name, mode=f"{mode:#o}")
    if kind == stat.S_IFDIR and not is_directory:
        raise RegistryError(
            ErrorCode.UNSAFE_MEMBER_TYPE, f"{name} is a directory, but its name lacks the trailing '/'.",
            member=name, mode=f"{mode:#o}",
        )
    if is_directory and size:
        raise RegistryError(ErrorCode.UNSAFE_MEMBER_TYPE, f"Directory entry {name} holds {size} bytes.", member=name, size=size)
    return is_directory


def _read_local_headers(file: BinaryIO, entries: list[_Entry], directory_offset: int) -> dict[str, MemberInfo]:
    """Each member's local header, checked against its central entry.

    In file order, members (header, data, descriptor) must follow each other from offset 0 up
    to the central directory: a gap hides other data, an overlap reuses data (a known bomb).
    """
    members = {}
    position, previous = 0, None
    for entry in sorted(entries, key=lambda entry: entry.offset):
        if entry.offset >= directory_offset:
            raise RegistryError(
                ErrorCode.ZIP_HEADER_MISMATCH, f"{entry.name}'s local header offset {entry.offset} is not before the "
                f"central directory at {directory_offset}.", member=entry.name, offset=entry.offset,
            )
        if entry.offset < position:
            raise RegistryError(
                ErrorCode.ZIP_BOMB,
                f"{entry.name} starts at offset {entry.offset}, inside {previous.name} (which ends at {position}).",
                member=entry.name, offset=entry.offset, overlaps=previous.name,
            )
        if entry.offset > position:
            _refuse_gap(position, entry.offset, previous)
        member, position = _read_local_header(file, entry)
        previous = entry
        if not entry.is_directory:
            members[entry.name] = member
    if position > directory_offset:
        raise RegistryError(
            ErrorCode.ZIP_BOMB, f"{previous.name} runs into the central directory (it ends at {position}, the directory "
            f"starts at {directory_offset}).", member=previous.name, offset=directory_offset,
        )
    if position < directory_offset:
        _refuse_gap(position, directory_offset, previous)
    return members


def _refuse_gap(start: int, end: int, previous: _Entry | None) -> NoReturn:
    where = f"after {previous.name}" if previous else "before the first member"
    raise RegistryError(
        ErrorCode.ZIP_POLYGLOT, f"{end - start} bytes of other data lie {where}, at offset {start}.",
        offset=start, length=end - start, after=previous.name if previous else None,
    )


def _read_local_header(file: BinaryIO, entry: _Entry) -> tuple[MemberInfo, int]:
    """The member as its local header places it, and the offset where it ends."""
    fixed = _read_at(file, entry.offset, LOCAL_HEADER.size)
    if len(fixed) < LOCAL_HEADER.size or not fixed.startswith(LOCAL_HEADER_SIGNATURE):
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, f"There is no local header for {entry.name} at offset {entry.offset}.",
            member=entry.name, offset=entry.offset,
        )
    header = LocalHeader._make(LOCAL_HEADER.unpack(fixed))
    raw_name = file.read(header.name_length)
    extra = file.read(header.extra_length)
    if raw_name != entry.raw_name:
        _mismatch(entry.name, "name", raw_name.decode("utf-8", "backslashreplace"), entry.name)
    if header.method != entry.method:
        _mismatch(entry.name, "compression method", header.method, entry.method)
    if (header.flags ^ entry.flags) & READING_FLAGS:
        _mismatch(entry.name, "flags", header.flags, entry.flags)
    data_offset = entry.offset + LOCAL_HEADER.size + header.name_length + header.extra_length
    data_end = data_offset + entry.compressed_size
    if entry.flags & DATA_DESCRIPTOR:
        # The local header was written before the data: CRC and sizes follow the data instead.
        zip64 = ZIP64_EXTRA in _extra_records(entry.name, extra)
        end = data_end + _data_descriptor_length(file, entry, data_end, zip64)
    else:
        size, compressed_size = _zip64_values(
            entry.name, "local header", extra, (header.size, header.compressed_size)
        )
        for field, local, central in (
            ("crc", header.crc, entry.crc),
            ("compressed size", compressed_size, entry.compressed_size),
            ("size", size, entry.size),
        ):
            if local != central:
                _mismatch(entry.name, field, local, central)
        end = data_end
    member = MemberInfo(
        entry.name, entry.offset, data_offset, entry.compressed_size, entry.size, entry.crc, entry.method == STORED
    )
    return member, end


def _data_descriptor_length(file: BinaryIO, entry: _Entry, at: int, zip64: bool) -> int:
    """The length of the data descriptor at ``at``, which must repeat the central entry's CRC and sizes."""
    layout = struct.Struct("<LQQ" if zip64 else "<LLL")
    found = _read_at(file, at, len(DATA_DESCRIPTOR_SIGNATURE) + layout.size)
    expected = (entry.crc, entry.compressed_size, entry.size)
    # The descriptor's signature is optional.
    for start in (len(DATA_DESCRIPTOR_SIGNATURE), 0):
        if (
            found[:start] == DATA_DESCRIPTOR_SIGNATURE[:start]
            and len(found) >= start + layout.size
            and layout.unpack_from(found, start) == expected
        ):
            return start + layout.size
    raise RegistryError(
        ErrorCode.ZIP_HEADER_MISMATCH, f"{entry.name}'s data descriptor does not repeat its CRC and sizes.",
        member=entry.name, offset=at,
    )


def _extra_records(member: str, extra: bytes) -> dict[int, bytes]:
    """An extra field's records by id (the first of each), read as zipfile reads them."""
    try:
        return extra_records(extra)
    except ExtraRecordOverrun as overrun:
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH,
            f"{member}'s extra field record {overrun.record:#06x} runs past the field's end.",
            member=member, record=overrun.record,
        ) from None


def _zip64_values(member: str, where: str, extra: bytes, values: tuple[int, ...]) -> tuple[int, ...]:
    """``values`` with each 0xFFFFFFFF replaced, in order, by the next 64-bit value of the zip64 extra field."""
    if ZIP64_MARKER not in values:
        return values
    replaced = zip64_values(_extra_records(member, extra), values)
    if replaced is None:
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, f"{member}'s {where} lacks the zip64 values its 0xFFFFFFFF fields call for.",
            member=member,
        )
    return replaced


def _check_zipfile_agrees(file: BinaryIO, entries: list[_Entry]) -> None:
    """Later stages read the bundle with zipfile: refuse a bundle it would read otherwise than inspected."""
    try:
        with zipfile.ZipFile(file) as archive:
            theirs = [
                (info.orig_filename, info.header_offset, info.compress_size, info.file_size, info.CRC)
                for info in archive.infolist()
            ]
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as error:
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, f"Python's zipfile cannot read the bundle: {error}.", error=str(error)
        ) from None
    ours = [(entry.name, entry.offset, entry.compressed_size, entry.size, entry.crc) for entry in entries]
    if theirs != ours:
        first = next((mine[0] for mine, other in zip(ours, theirs) if mine != other), None)
        raise RegistryError(
            ErrorCode.ZIP_HEADER_MISMATCH, "Python's zipfile reads the central directory differently.", member=first,
        )


def _mismatch(member: str, field: str, local, central) -> NoReturn:
    raise RegistryError(
        ErrorCode.ZIP_HEADER_MISMATCH, f"{member}'s local header and central directory disagree on its {field}: "
        f"{local!r} against {central!r}.", member=member, field=field, local=local, central=central,
    )


def _read_at(file: BinaryIO, offset: int, length: int) -> bytes:
    file.seek(offset)
    return file.read(length)
