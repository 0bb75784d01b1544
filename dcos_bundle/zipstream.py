"""Follow a ZIP archive's local headers while its bytes arrive, and name each member once its data is complete.

An upload arrives in pieces; ``MemberScanner`` is fed them in order and reports each member as
soon as its last data byte was fed, so a finished layer can be handed on while the rest of the
upload still arrives. Member data is skipped by arithmetic, never copied or held: only the bytes
of the header being read are buffered, at most one local header's worth.

It is an early hint, not a check: the whole archive is inspected strictly once it is complete.
The scanner never raises on odd input; at anything it cannot follow safely (a data descriptor,
encryption, an unknown method, a name that does not decode, zip64 sizes it is not given, a broken
extra field, any bytes other than a local header where one is due, the central directory) it
stops and reports nothing more.

Plain Python (no Django).
"""

from __future__ import annotations

import base64
from dataclasses import astuple, dataclass

from dcos_bundle.zip_records import (
    DATA_DESCRIPTOR,
    DEFLATED,
    ENCRYPTION_FLAGS,
    LOCAL_HEADER,
    LOCAL_HEADER_SIGNATURE,
    STORED,
    UTF8_NAME,
    ExtraRecordOverrun,
    LocalHeader,
    extra_records,
    zip64_values,
)

_SIGNATURE_SIZE = len(LOCAL_HEADER_SIGNATURE)


@dataclass(frozen=True)
class ArrivedMember:
    name: str
    header_offset: int  # offset of its local header
    data_offset: int  # offset of its first data byte
    compressed_size: int
    size: int
    crc: int
    stored: bool  # method 0

    @property
    def data_end(self) -> int:
        return self.data_offset + self.compressed_size


class MemberScanner:
    """A push parser of a ZIP's local headers: ``feed`` it the archive's bytes in order, in pieces of any size.

    ``state()`` is a small JSON-serialisable dict; ``MemberScanner(state)`` carries on from it
    exactly as the scanner it came from would have.
    """

    def __init__(self, state: dict | None = None):
        self._position = 0  # bytes fed in total
        self._header_offset = 0  # where the next local header is due
        self._header = bytearray()  # its bytes fed so far, from _header_offset on
        self._pending: ArrivedMember | None = None  # read, but its data is not complete yet
        self._stopped = False
        if state is not None:
            self._position = int(state["position"])
            self._header_offset = int(state["header_offset"])
            self._header = bytearray(base64.b64decode(state["header"]))
            pending = state["pending"]
            self._pending = None if pending is None else ArrivedMember(*pending)
            self._stopped = bool(state["stopped"])

    @property
    def position(self) -> int:
        """How many bytes were fed in total."""
        return self._position

    @property
    def stopped(self) -> bool:
        """Whether it gave up or reached the central directory: it reports nothing more."""
        return self._stopped

    def state(self) -> dict:
        return {
            "position": self._position,
            "header_offset": self._header_offset,
            "header": base64.b64encode(self._header).decode("ascii"),
            "pending": None if self._pending is None else list(astuple(self._pending)),
            "stopped": self._stopped,
        }

    def feed(self, data: bytes | bytearray | memoryview) -> list[ArrivedMember]:
        """The archive's next bytes; the members whose data they complete, in file order."""
        view = memoryview(data).cast("B")
        start = self._position
        end = self._position = start + len(view)
        arrived: list[ArrivedMember] = []
        while not self._stopped:
            pending = self._pending
            if pending is not None:
                if pending.data_end > end:
                    break
                arrived.append(pending)
                self._pending = None
            if self._header_offset >= end or not self._read_header(view, start):
                break
        return arrived

    def _stop(self) -> bool:
        self._stopped = True
        self._header = bytearray()
        self._pending = None
        return False

    def _take(self, view: memoryview, start: int, length: int) -> bool:
        """Whether the header buffer holds ``length`` bytes, after taking what it lacks from ``view``."""
        header = self._header
        missing = length - len(header)
        if missing > 0:
            # The header's next byte is at offset _header_offset + len(header); ``view`` starts at ``start``.
            at = self._header_offset + len(header) - start
            header += view[at:at + missing]
        return len(header) >= length

    def _read_header(self, view: memoryview, start: int) -> bool:
        """Read on in the local header due at _header_offset; whether it is now complete (and followed)."""
        header = self._header
        complete = self._take(view, start, LOCAL_HEADER.size)
        # Anything but a local header where one is due: the central directory, or bytes of no ZIP.
        if header[:_SIGNATURE_SIZE] != LOCAL_HEADER_SIGNATURE[:len(header)]:
            return self._stop()
        if not complete:
            return False
        fixed = LocalHeader._make(LOCAL_HEADER.unpack_from(header))
        if fixed.flags & (DATA_DESCRIPTOR | ENCRYPTION_FLAGS) or fixed.method not in (STORED, DEFLATED):
            return self._stop()
        name_end = LOCAL_HEADER.size + fixed.name_length
        header_size = name_end + fixed.extra_length
        if not self._take(view, start, header_size):
            return False
        try:
            name = bytes(header[LOCAL_HEADER.size:name_end]).decode("utf-8" if fixed.flags & UTF8_NAME else "ascii")
            records = extra_records(bytes(header[name_end:header_size]))
        except (UnicodeDecodeError, ExtraRecordOverrun):
            return self._stop()
        sizes = zip64_values(records, (fixed.size, fixed.compressed_size))
        if sizes is None:
            return self._stop()
        size, compressed_size = sizes
        data_offset = self._header_offset + header_size
        member = ArrivedMember(
            name, self._header_offset, data_offset, compressed_size, size, fixed.crc, fixed.method == STORED
        )
        self._header_offset = member.data_end
        self._header = bytearray()
        # Directory entries are followed, not reported.
        if not name.endswith("/"):
            self._pending = member
        return True
