"""MemberScanner: real archives (zipfile's, and bundles from BundleWriter) fed in pieces of any size report
each member exactly as zipfile reads it, as soon as its data is complete; at anything it cannot follow it stops."""

from __future__ import annotations

import io
import json
import random
import struct
import time
import zipfile
import zlib

import pytest

from dcos_bundle.format import image_blob_member
from dcos_bundle.writer import BundleWriter
from dcos_bundle.zipstream import ArrivedMember, MemberScanner
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.hostile import LOCAL_FLAGS, Pipe, header_offsets, patched

MiB = 1024 * 1024
LAYER_DIGEST = "ab" * 32


def archive(*members: tuple[str | zipfile.ZipInfo, bytes], compression: int = zipfile.ZIP_STORED, **options) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression, **options) as zip_file:
        for name, data in members:
            zip_file.writestr(name, data)
    return buffer.getvalue()


def small_archive() -> bytes:
    """Stored, deflated, empty, directory and zip64 members, a few hundred bytes in all."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zip_file:
        zip_file.writestr(image_blob_member("sha256:" + LAYER_DIGEST), b"layer bytes " * 8)
        zip_file.writestr("docs/", b"")
        zip_file.writestr("empty", b"")
        zip_file.writestr("metadata.json", b'{"name": "x"}' * 20, compress_type=zipfile.ZIP_DEFLATED)
        with zip_file.open(zipfile.ZipInfo("big"), "w", force_zip64=True) as member:
            member.write(b"z" * 100)
        zip_file.writestr("last", b"!")
    return buffer.getvalue()


def expected_members(data: bytes) -> list[ArrivedMember]:
    """The members as zipfile reads them; each data offset is found where the member's bytes really are."""
    members = []
    with zipfile.ZipFile(io.BytesIO(data)) as zip_file:
        for info in sorted(zip_file.infolist(), key=lambda info: info.header_offset):
            if info.is_dir():
                continue
            content = zip_file.read(info)
            # The data ends the local header: the first offset after its fixed part and name whose bytes read back.
            data_offset = next(
                offset for offset in range(info.header_offset + 30 + len(info.filename.encode()), len(data))
                if _content_at(data, offset, info) == content
            )
            members.append(ArrivedMember(
                info.filename, info.header_offset, data_offset, info.compress_size, info.file_size, info.CRC,
                info.compress_type == zipfile.ZIP_STORED,
            ))
    return members


def _content_at(data: bytes, offset: int, info: zipfile.ZipInfo) -> bytes | None:
    raw = data[offset:offset + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        return raw
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        content = inflater.decompress(raw)
    except zlib.error:
        return None
    return content if inflater.eof and not inflater.unused_data else None


def scan(data: bytes, cuts, round_trip: bool = False) -> tuple[list[tuple[int, ArrivedMember]], MemberScanner]:
    """Each report with the position it was made at, feeding ``data`` cut at the offsets ``cuts``."""
    scanner, reports, start = MemberScanner(), [], 0
    for end in [*cuts, len(data)]:
        if round_trip:
            scanner = MemberScanner(json.loads(json.dumps(scanner.state())))
        reports += [(end, member) for member in scanner.feed(data[start:end])]
        assert scanner.position == end
        start = end
    return reports, scanner


def members_of(reports) -> list[ArrivedMember]:
    return [member for _, member in reports]


def random_cuts(size: int, seed: int) -> list[int]:
    """Offsets cutting ``size`` bytes into pieces of random sizes, runs of 1-byte pieces among them."""
    rng, cuts, position = random.Random(seed), [], 0
    while True:
        if rng.random() < 0.2:
            steps = [1] * rng.randint(1, 64)
        else:
            steps = [rng.choice([2, 3, 4, 5, 29, 30, 31, 100, 4096, 65536, rng.randint(1, 200_000)])]
        for step in steps:
            position += step
            if position >= size:
                return cuts
            cuts.append(position)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> bytes:
    directory = tmp_path_factory.mktemp("bundle")
    built = make_bundle(
        directory,
        assets=[AssetSpec("payload", "payload.tgz", 150 * 1024, 1), AssetSpec("empty", "empty.bin", 0, 2)],
        images=[ImageSpec("server", "example/hello:1.0.0", [256 * 1024, 32 * 1024, 1000])],
    )
    return built.path.read_bytes()


def test_a_bundle_reports_its_members_as_zipfile_reads_them(bundle):
    reports, scanner = scan(bundle, [])
    expected = expected_members(bundle)
    assert members_of(reports) == expected
    assert scanner.stopped
    # The three layers at least are stored blobs; JSON documents are deflated.
    assert sum(member.stored and member.name.startswith("images/blobs/sha256/") for member in expected) >= 3
    assert any(not member.stored for member in expected)


def test_bundle_writer_members_of_every_kind_including_zip64(tmp_path):
    with BundleWriter(tmp_path / "x-1.dcos") as writer:
        writer.write_json("metadata.json", {"name": "x", "padding": "p" * 5000})
        writer.write_bytes("images/blobs/sha256/" + LAYER_DIGEST, b"\x1f\x8b" + bytes(range(256)) * 40, compress=False)
        # Of unknown size: written with a zip64 extra field.
        writer.write_stream("assets/sha256/" + "cd" * 32, io.BytesIO(b"asset" * 3000))
        writer.write_stream("assets/sha256/" + "ef" * 32, io.BytesIO(b""), size=0)
        path = writer.commit()
    data = path.read_bytes()
    reports, scanner = scan(data, random_cuts(len(data), seed=7))
    assert members_of(reports) == expected_members(data)
    assert [member.name for _, member in reports][2] == "assets/sha256/" + "cd" * 32
    assert scanner.stopped


def test_every_cut_of_a_small_archive_gives_the_same_reports():
    data = small_archive()
    expected = expected_members(data)
    assert [member.name for member in expected] == [
        image_blob_member("sha256:" + LAYER_DIGEST), "empty", "metadata.json", "big", "last",
    ]
    for cut in range(len(data) + 1):
        assert members_of(scan(data, [cut])[0]) == expected, cut
    # Three pieces with a short middle: a signature, a fixed header or a name cut twice.
    for first in range(len(data)):
        for second in range(first + 1, min(first + 6, len(data)) + 1):
            assert members_of(scan(data, [first, second])[0]) == expected, (first, second)


def test_random_pieces_of_a_bundle_give_the_same_reports(bundle):
    expected = expected_members(bundle)
    for seed in range(3):
        assert members_of(scan(bundle, random_cuts(len(bundle), seed))[0]) == expected, seed


def test_one_byte_pieces_of_a_bundle(bundle):
    reports, scanner = scan(bundle, range(1, len(bundle)))
    assert members_of(reports) == expected_members(bundle)
    assert scanner.stopped


def test_state_survives_json_between_pieces():
    data = small_archive()
    expected = expected_members(data)
    assert members_of(scan(data, range(1, len(data)), round_trip=True)[0]) == expected
    for cut in range(len(data) + 1):
        assert members_of(scan(data, [cut], round_trip=True)[0]) == expected, cut


def test_state_survives_json_between_random_pieces_of_a_bundle(bundle):
    cuts = random_cuts(len(bundle), seed=11)
    reports, scanner = scan(bundle, cuts, round_trip=True)
    assert reports == scan(bundle, cuts)[0]
    assert members_of(reports) == expected_members(bundle)
    assert scanner.state() == json.loads(json.dumps(scanner.state()))


def test_state_is_small_while_data_is_skipped(bundle):
    scanner, largest = MemberScanner(), 0
    for start in range(0, len(bundle), 4096):
        scanner.feed(bundle[start:start + 4096])
        largest = max(largest, len(json.dumps(scanner.state())))
    assert largest < 1000


def test_each_member_is_reported_as_soon_as_its_last_byte_arrives_and_not_before():
    data = small_archive()
    reports, _ = scan(data, range(1, len(data)))
    assert [position for position, _ in reports] == [member.data_offset + member.compressed_size
                                                     for member in expected_members(data)]
    # In bigger pieces: in the piece holding the last byte.
    for size in (7, 30, 64):
        cuts = list(range(size, len(data), size))
        for position, member in scan(data, cuts)[0]:
            assert position - size < member.data_offset + member.compressed_size <= position


def test_an_empty_member_is_reported_once_its_header_is_complete():
    data = archive(("a", b"abc"), ("empty", b""), ("b", b"def"))
    empty = expected_members(data)[1]
    assert empty.compressed_size == 0 and empty.size == 0
    scanner = MemberScanner()
    assert [member.name for member in scanner.feed(data[:empty.data_offset - 1])] == ["a"]
    assert scanner.feed(data[empty.data_offset - 1:empty.data_offset]) == [empty]


def test_a_directory_entry_is_followed_not_reported():
    data = archive(("dir/", b""), ("dir/file", b"content"), ("other/", b""))
    reports, scanner = scan(data, [])
    assert [member.name for member in members_of(reports)] == ["dir/file"]
    assert members_of(reports) == expected_members(data)
    assert scanner.stopped


def test_it_stops_at_the_central_directory():
    data = small_archive()
    with zipfile.ZipFile(io.BytesIO(data)) as zip_file:
        directory = zip_file.start_dir
    scanner = MemberScanner()
    assert len(scanner.feed(data[:directory])) == len(expected_members(data))
    assert not scanner.stopped
    assert scanner.feed(data[directory:directory + 4]) == []
    assert scanner.stopped
    assert scanner.feed(data[directory + 4:]) == []
    assert scanner.position == len(data)


def test_a_stopped_scanner_reports_nothing_more():
    data = archive(("a", b"abc"))
    scanner = MemberScanner()
    scanner.feed(b"not a zip")
    assert scanner.stopped
    assert scanner.feed(data) == []
    assert MemberScanner(json.loads(json.dumps(scanner.state()))).feed(data) == []


def test_it_stops_on_data_descriptors():
    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w") as zip_file:
        zip_file.writestr("a", b"abc")
        zip_file.writestr("b", b"def")
    data = bytes(pipe.data)
    assert struct.unpack_from("<H", data, LOCAL_FLAGS)[0] & 0x0008
    reports, scanner = scan(data, [])
    assert reports == [] and scanner.stopped


@pytest.mark.parametrize("flag", [0x0001, 0x0040, 0x2000])
def test_it_stops_on_an_encryption_flag(flag):
    data = archive(("a", b"abc"), ("b", b"def"), ("c", b"ghi"))
    local = header_offsets(data)[1][0]
    data = patched(data, (local + LOCAL_FLAGS, "<H", flag))
    reports, scanner = scan(data, [])
    assert [member.name for member in members_of(reports)] == ["a"]
    assert scanner.stopped


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_it_stops_on_a_method_other_than_stored_and_deflated(compression):
    data = archive(("a", b"abc"), compression=zipfile.ZIP_DEFLATED)
    data = data[:header_offsets(data)[0][1]] + archive(("b", b"def"), compression=compression)
    assert members_of(scan(data, [])[0]) == expected_members(archive(("a", b"abc"), compression=zipfile.ZIP_DEFLATED))
    assert scan(data, [])[1].stopped


def test_a_non_ascii_name_needs_the_utf8_flag():
    data = archive(("a", b"abc"), ("café", b"def"), ("c", b"ghi"))
    assert [member.name for member in members_of(scan(data, [])[0])] == ["a", "café", "c"]
    local = header_offsets(data)[1][0]
    flags = struct.unpack_from("<H", data, local + LOCAL_FLAGS)[0]
    assert flags & 0x0800
    reports, scanner = scan(patched(data, (local + LOCAL_FLAGS, "<H", flags & ~0x0800)), [])
    assert [member.name for member in members_of(reports)] == ["a"]
    assert scanner.stopped


@pytest.mark.parametrize("garbage", [b"x", b"PK", b"PK\x03", b"PK\x05\x06", b"garbage between members"])
def test_it_stops_on_garbage_between_members(garbage):
    data = archive(("a", b"abc"), ("b", b"def"))
    second = header_offsets(data)[1][0]
    reports, scanner = scan(data[:second] + garbage + data[second:], [])
    assert [member.name for member in members_of(reports)] == ["a"]
    assert scanner.stopped


def test_it_stops_at_once_on_anything_but_a_zip():
    for data in (b"\x1f\x8b\x08\x00", b"PK\x07\x08", b"\0" * 100):
        reports, scanner = scan(data, [])
        assert reports == [] and scanner.stopped


def zip64_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zip_file:
        zip_file.writestr("a", b"abc")
        with zip_file.open(zipfile.ZipInfo("big"), "w", force_zip64=True) as member:
            member.write(b"x" * 5000)
        zip_file.writestr("c", b"ghi")
    return buffer.getvalue()


def test_zip64_members_are_followed():
    data = zip64_archive()
    local = header_offsets(data)[1][0]
    assert struct.unpack_from("<2L", data, local + 18) == (0xFFFFFFFF, 0xFFFFFFFF)
    reports, scanner = scan(data, random_cuts(len(data), seed=3))
    assert members_of(reports) == expected_members(data)
    assert members_of(reports)[1].compressed_size == members_of(reports)[1].size == 5000


def test_zip64_sizes_missing_from_the_extra_field_stop_it():
    data = zip64_archive()
    extra = header_offsets(data)[1][0] + 30 + len(b"big")
    assert struct.unpack_from("<HH", data, extra) == (0x0001, 16)
    # Another record in the zip64 record's place: the 0xFFFFFFFF sizes have no values.
    reports, scanner = scan(patched(data, (extra, "<H", 0x5455)), [])
    assert [member.name for member in members_of(reports)] == ["a"]
    assert scanner.stopped
    # A zip64 record too short for both sizes.
    reports, scanner = scan(patched(data, (extra, "<HHHH", 0x0001, 4, 0x5455, 8)), [])
    assert [member.name for member in members_of(reports)] == ["a"]
    assert scanner.stopped


def test_an_extra_record_running_past_the_field_stops_it():
    info = zipfile.ZipInfo("b")
    info.extra = struct.pack("<HH", 0xCAFE, 4) + b"1234"
    data = archive(("a", b"abc"), (info, b"def"), ("c", b"ghi"))
    assert members_of(scan(data, [])[0]) == expected_members(data)
    extra = header_offsets(data)[1][0] + 30 + 1
    reports, scanner = scan(patched(data, (extra + 2, "<H", 5)), [])
    assert [member.name for member in members_of(reports)] == ["a"]
    assert scanner.stopped


def test_the_longest_possible_header_is_followed_in_pieces():
    info = zipfile.ZipInfo("n" * 0xFFFF)
    info.extra = struct.pack("<HH", 0xCAFE, 0xFFFF - 4) + b"e" * (0xFFFF - 4)
    data = archive((info, b"data"), ("next", b"more"))
    expected = expected_members(data)
    assert members_of(scan(data, random_cuts(len(data), seed=5), round_trip=True)[0]) == expected
    assert members_of(scan(data, range(1, len(data), 997))[0]) == expected


def test_memoryview_and_bytearray_pieces():
    data = small_archive()
    scanner = MemberScanner()
    reports = scanner.feed(bytearray(data[:100])) + scanner.feed(b"") + scanner.feed(memoryview(data)[100:])
    assert reports == expected_members(data)
    assert scanner.feed(b"") == [] and scanner.position == len(data)


def test_a_gibibyte_layer_in_mebibyte_pieces_costs_next_to_nothing():
    """Data is skipped by arithmetic: the same 1 MiB piece stands for every piece of a 1 GiB layer."""
    info = zipfile.ZipInfo(image_blob_member("sha256:" + LAYER_DIGEST))
    info.file_size = info.compress_size = 1024 * MiB
    info.CRC = 0
    header = info.FileHeader()
    piece = memoryview(bytes(MiB))
    scanner = MemberScanner()
    assert scanner.feed(header) == []
    started = time.perf_counter()
    arrived = []
    for _ in range(1024):
        arrived += scanner.feed(piece)
    elapsed = time.perf_counter() - started
    assert arrived == [ArrivedMember(info.filename, 0, len(header), 1024 * MiB, 1024 * MiB, 0, True)]
    assert elapsed < 0.5, f"{elapsed * 1000:.1f} ms for 1024 pieces"
    assert len(json.dumps(scanner.state())) < 200
