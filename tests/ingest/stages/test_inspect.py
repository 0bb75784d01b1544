"""The inspect stage: valid bundles open, and each kind of hostile ZIP is refused with its own code."""

from __future__ import annotations

import io
import random
import stat
import zipfile

import pytest

from dcos_bundle.errors import RegistryError
from ingest.stages.inspect import InspectLimits, inspect_bundle
from tests.bundles import make_bundle
from tests.hostile import (
    CENTRAL_COMPRESSED_SIZE,
    CENTRAL_FLAGS,
    CENTRAL_METHOD,
    CENTRAL_OFFSET,
    CENTRAL_SIZE,
    CENTRAL_VERSION_NEEDED,
    END_COUNTS,
    END_DIRECTORY_SIZE,
    END_DISK,
    END_RECORD,
    LOCAL_COMPRESSED_SIZE,
    LOCAL_CRC,
    LOCAL_FLAGS,
    LOCAL_METHOD,
    LOCAL_NAME,
    LOCAL_SIZE,
    ZIP64_LOCATOR_OFFSET,
    Pipe,
    directory_offset,
    header_offsets,
    in_central_entry,
    in_end_record,
    patched,
    patched_in_both,
    renamed,
    tar_bytes,
    unix_member,
    with_zip64_end_records,
    without_central_entry,
    zip_bytes,
)
from tests.streams import PatternStream


def inspect(tmp_path, data: bytes, **limits):
    path = tmp_path / "upload.dcos"
    path.write_bytes(data)
    return inspect_bundle(path, InspectLimits(**limits))


def refused(tmp_path, data: bytes, code: str, **limits) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        inspect(tmp_path, data, **limits)
    assert caught.value.code == code, caught.value.to_json()
    return caught.value


def test_a_built_bundle_passes_with_its_members_where_zipfile_finds_them(tmp_path):
    built = make_bundle(tmp_path)
    inventory = inspect_bundle(built.path)
    with zipfile.ZipFile(built.path) as archive:
        infos = archive.infolist()
    assert [(member.name, member.offset, member.compressed_size, member.size, member.crc)
            for member in inventory.members.values()] == [
        (info.filename, info.header_offset, info.compress_size, info.file_size, info.CRC) for info in infos
    ]
    assert inventory.total_bytes == sum(info.file_size for info in infos)
    asset = built.manifest.assets[0]
    member = inventory.members[f"assets/sha256/{asset.digest.removeprefix('sha256:')}"]
    assert member.stored and member.size == asset.size
    with open(built.path, "rb") as file:
        file.seek(member.data_offset)
        assert file.read(member.size) == PatternStream(asset.size, seed=1).read(asset.size)


def test_a_metadata_only_bundle_made_with_zipfile_passes(tmp_path):
    inventory = inspect(tmp_path, zip_bytes(("metadata.json", b'{"name": "hello"}')))
    assert list(inventory.members) == ["metadata.json"]
    assert inventory.total_bytes == 17 and not inventory.members["metadata.json"].stored


def test_directory_entries_pass_and_are_left_out(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.mkdir("images")  # a Unix directory mode
        archive.writestr(zipfile.ZipInfo("assets/"), b"")  # no type bits, only the name says directory
        archive.writestr("metadata.json", b"{}")
    assert list(inspect(tmp_path, buffer.getvalue()).members) == ["metadata.json"]


def test_an_empty_zip_has_an_empty_inventory(tmp_path):
    inventory = inspect(tmp_path, zip_bytes())
    assert inventory.members == {} and inventory.total_bytes == 0


def test_zip64_members_and_end_records_pass(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", b"{}")
        with archive.open(zipfile.ZipInfo("assets/sha256/big"), "w", force_zip64=True) as member:
            member.write(b"x" * 1000)
    data = with_zip64_end_records(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
    inventory = inspect(tmp_path, data)
    assert inventory.members["assets/sha256/big"].size == 1000 and inventory.total_bytes == 1002


def test_data_descriptors_pass_and_must_repeat_the_crc(tmp_path):
    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", b"{}")
        archive.writestr("manifest.json", b"[]")
    member = inspect(tmp_path, bytes(pipe.data)).members["metadata.json"]
    descriptor = member.data_offset + member.compressed_size
    error = refused(tmp_path, patched(pipe.data, (descriptor + 4, "<L", member.crc ^ 1)), "zip_header_mismatch")
    assert error.details["member"] == "metadata.json"


@pytest.mark.parametrize("name, problem", [
    ("../evil", ".."),
    ("assets/../../evil", ".."),
    ("/etc/passwd", "absolute"),
    ("assets\\evil", "backslash"),
    ("C:/evil", "drive letter"),
    ("c:evil", "drive letter"),
    ("assets//evil", "empty path component"),
    ("", "empty path component"),
    ("assets/./evil", "'.' component"),
    ("evil\x01", "control character"),
    ("evil\x7f", "control character"),
])
def test_unsafe_names_are_refused(tmp_path, name, problem):
    # As a ZipInfo: writestr given a bare name fails on an empty one.
    error = refused(tmp_path, zip_bytes((zipfile.ZipInfo(name), b"x")), "unsafe_member_name")
    assert error.details["member"] == name and problem in error.message


def test_a_nul_in_a_name_is_refused(tmp_path):
    # zipfile cuts names at a NUL when writing, so it is put in afterwards.
    data = renamed(zip_bytes(("evil.json", b"x")), b"evil.json", b"evil\0json")
    assert refused(tmp_path, data, "unsafe_member_name").details["member"] == "evil\0json"


def test_a_name_over_the_length_limit_is_refused(tmp_path):
    error = refused(tmp_path, zip_bytes(("a" * 17, b"x")), "unsafe_member_name", max_name_length=16)
    assert error.details["length"] == 17 and error.details["member"].startswith("a" * 16)


def test_a_name_flagged_utf8_must_be_utf8(tmp_path):
    data = renamed(zip_bytes(("caf\u00e9", b"x")), "caf\u00e9".encode(), b"caf\xff\xfe")
    assert refused(tmp_path, data, "unsafe_member_name").details["member"] == "caf\\xff\\xfe"


def test_a_name_not_flagged_utf8_must_be_ascii(tmp_path):
    data = patched_in_both(zip_bytes(("caf\u00e9", b"x")), 0, LOCAL_FLAGS, CENTRAL_FLAGS, "<H", 0)
    error = refused(tmp_path, data, "unsafe_member_name")
    assert error.details["member"] == "caf\u00e9" and "ASCII" in error.message


@pytest.mark.parametrize("member", [
    unix_member("assets/link", stat.S_IFLNK | 0o777, b"/etc/passwd"),
    unix_member("assets/fifo", stat.S_IFIFO | 0o644),
    unix_member("assets/tty", stat.S_IFCHR | 0o666),
    unix_member("assets/disk", stat.S_IFBLK | 0o660),
    unix_member("assets/socket", stat.S_IFSOCK | 0o755),
    unix_member("assets/dir", stat.S_IFDIR | 0o755, b""),  # a directory must be named "assets/dir/"
    unix_member("assets/dir/", stat.S_IFDIR | 0o755, b"data"),  # a directory holds no data
], ids=["symlink", "fifo", "char-device", "block-device", "socket", "dir-without-slash", "dir-with-data"])
def test_members_other_than_files_and_directories_are_refused(tmp_path, member):
    error = refused(tmp_path, zip_bytes(member), "unsafe_member_type")
    assert error.details["member"] == member[0].filename


def test_unix_type_bits_count_only_from_unix_writers(tmp_path):
    info, data = unix_member("metadata.json", stat.S_IFLNK | 0o777)
    info.create_system = 0  # MS-DOS: the high bits are not a Unix mode
    assert list(inspect(tmp_path, zip_bytes((info, data))).members) == ["metadata.json"]


def test_a_member_inflating_over_the_ratio_is_a_zip_bomb(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("images/index.json", "w") as member:
            for _ in range(8):
                member.write(bytes(1024 * 1024))
    error = refused(tmp_path, buffer.getvalue(), "zip_bomb")
    assert error.details["member"] == "images/index.json" and error.details["size"] == 8 * 1024 * 1024
    assert error.details["compressed_size"] * 200 < error.details["size"]


def test_deflated_members_under_the_ratio_pass(tmp_path):
    data = random.Random(0).randbytes(4096) + bytes(4096)  # inflates about twice
    assert inspect(tmp_path, zip_bytes(("metadata.json", data)), max_ratio=3).total_bytes == 8192


@pytest.mark.parametrize("same_header", [True, False], ids=["same-local-header", "data-covering-the-next-header"])
def test_overlapping_members_are_a_zip_bomb(tmp_path, same_header):
    """Members sharing bytes are how bombs exceed deflate's own ratio; refused as zip_bomb, not as duplicates.

    Either a second central entry points at the first member's local header, or the first
    member's data is declared long enough to cover the second member's header.
    """
    data = zip_bytes(("a.json", b"{}"), ("b.json", b"[]"))
    (first_local, first_central), (second_local, second_central) = header_offsets(data)
    if same_header:
        data = patched(data, (second_central + CENTRAL_OFFSET, "<L", first_local))
    else:
        longer = second_local - first_local
        data = patched(data, (first_local + LOCAL_COMPRESSED_SIZE, "<L", longer),
                       (first_central + CENTRAL_COMPRESSED_SIZE, "<L", longer))
    error = refused(tmp_path, data, "zip_bomb")
    assert error.details["member"] == "b.json" and error.details["overlaps"] == "a.json"


def test_a_member_over_the_size_limit_is_refused(tmp_path):
    error = refused(tmp_path, zip_bytes(("metadata.json", b"x" * 1001)), "member_too_large", max_member_bytes=1000)
    assert error.details == {"member": "metadata.json", "size": 1001, "limit": 1000}


def test_too_many_members_are_refused(tmp_path):
    data = zip_bytes(("a", b""), ("b", b""), ("c", b""))
    assert refused(tmp_path, data, "too_many_members", max_members=2).details == {"count": 3, "limit": 2}


def test_members_adding_up_over_the_total_limit_are_refused(tmp_path):
    data = zip_bytes(("a", b"x" * 600), ("b", b"y" * 600))
    error = refused(tmp_path, data, "bundle_too_large", max_total_bytes=1000, max_ratio=1000)
    assert error.details == {"size": 1200, "limit": 1000}


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_name_twice_is_refused(tmp_path):
    data = zip_bytes(("metadata.json", b"{}"), ("metadata.json", b'{"evil": true}'))
    assert refused(tmp_path, data, "duplicate_member").details["member"] == "metadata.json"


@pytest.mark.parametrize("field, offset, fmt, value", [
    ("name", LOCAL_NAME, "<4s", b"evil"),
    ("compression method", LOCAL_METHOD, "<H", zipfile.ZIP_STORED),
    ("flags", LOCAL_FLAGS, "<H", 0x0008),
    ("crc", LOCAL_CRC, "<L", 0),
    ("size", LOCAL_SIZE, "<L", 1),
])
def test_a_local_header_disagreeing_with_the_central_directory_is_refused(tmp_path, field, offset, fmt, value):
    data = zip_bytes(("metadata.json", b"{}"))
    [(local, _)] = header_offsets(data)
    error = refused(tmp_path, patched(data, (local + offset, fmt, value)), "zip_header_mismatch")
    assert error.details["member"] == "metadata.json" and error.details["field"] == field


def test_a_missing_local_header_is_refused(tmp_path):
    data = zip_bytes(("metadata.json", b"{}"))
    error = refused(tmp_path, patched(data, (0, "<4s", b"PK\0\0")), "zip_header_mismatch")
    assert error.details == {"member": "metadata.json", "offset": 0}


def test_an_entry_zipfile_would_not_read_is_refused(tmp_path):
    data = zip_bytes(("metadata.json", b"{}"))
    [(_, central)] = header_offsets(data)
    # zipfile refuses entries needing a ZIP version above 6.3, so later stages could not read it.
    error = refused(tmp_path, patched(data, (central + CENTRAL_VERSION_NEEDED, "<H", 64)), "zip_header_mismatch")
    assert "zipfile" in error.message


@pytest.mark.parametrize("malform, code", [
    pytest.param(lambda data: in_end_record(data, END_COUNTS, "<2H", 3, 3),
                 "zip_header_mismatch", id="more-entries-declared-than-present"),
    pytest.param(lambda data: in_end_record(data, END_DIRECTORY_SIZE, "<L", len(data) - directory_offset(data) - 21),
                 "truncated_zip", id="directory-size-overstated"),
    pytest.param(lambda data: in_central_entry(data, 1, CENTRAL_OFFSET, "<L", directory_offset(data)),
                 "zip_header_mismatch", id="local-header-offset-in-the-central-directory"),
    pytest.param(lambda data: in_central_entry(data, 1, CENTRAL_SIZE, "<L", 5),
                 "zip_header_mismatch", id="stored-member-with-two-sizes"),
    pytest.param(lambda data: without_central_entry(data, 1),
                 "zip_polyglot", id="last-member-left-out-of-the-directory"),
    pytest.param(lambda data: patched_in_both(data, 1, LOCAL_COMPRESSED_SIZE, CENTRAL_COMPRESSED_SIZE, "<2L", 5, 5),
                 "zip_bomb", id="data-running-into-the-central-directory"),
    pytest.param(lambda data: in_end_record(with_zip64_end_records(data), ZIP64_LOCATOR_OFFSET, "<Q", 0),
                 "zip_header_mismatch", id="zip64-locator-pointing-elsewhere"),
    pytest.param(lambda data: in_end_record(with_zip64_end_records(data), END_COUNTS, "<2H", 1, 1),
                 "zip_header_mismatch", id="end-records-disagreeing"),
])
def test_malformed_structures_are_refused(tmp_path, malform, code):
    data = zip_bytes(("a.json", b"{}"), (zipfile.ZipInfo("b.bin"), b"data"))  # deflated, then stored
    refused(tmp_path, malform(data), code)


def test_data_before_the_zip_is_a_polyglot(tmp_path):
    error = refused(tmp_path, tar_bytes() + zip_bytes(("metadata.json", b"{}")), "zip_polyglot")
    assert error.details == {"offset": 0, "length": len(tar_bytes())}


def test_data_before_the_first_member_is_a_polyglot_even_with_offsets_counted_from_the_file_start(tmp_path):
    buffer = io.BytesIO(tar_bytes())
    buffer.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", b"{}")
    error = refused(tmp_path, buffer.getvalue(), "zip_polyglot")
    assert error.details == {"offset": 0, "length": len(tar_bytes()), "after": None}


def test_data_between_members_is_a_polyglot(tmp_path):
    data = zip_bytes(("metadata.json", b"{}"), ("hidden", b"payload"), ("manifest.json", b"{}"))
    error = refused(tmp_path, without_central_entry(data, 1), "zip_polyglot")
    assert error.details["after"] == "metadata.json" and error.details["offset"] == header_offsets(data)[1][0]


@pytest.mark.parametrize("data, comment_length", [
    (zip_bytes(("metadata.json", b"{}")) + tar_bytes(), 0),
    (zip_bytes(("metadata.json", b"{}"), comment=b"hello"), 5),
], ids=["tar-appended", "archive-comment"])
def test_anything_after_the_end_record_is_refused(tmp_path, data, comment_length):
    error = refused(tmp_path, data, "zip_trailing_data")
    assert error.details["comment_length"] == comment_length
    assert error.details["offset"] + error.details["length"] == len(data)


@pytest.mark.parametrize("cut", ["half", "end-record"])
def test_a_cut_bundle_is_truncated(tmp_path, cut):
    data = make_bundle(tmp_path).path.read_bytes()
    refused(tmp_path, data[:len(data) // 2] if cut == "half" else data[:-END_RECORD.size], "truncated_zip")


def test_one_part_of_a_split_zip_is_truncated(tmp_path):
    data = zip_bytes(("metadata.json", b"{}"))
    refused(tmp_path, in_end_record(data, END_DISK, "<H", 1), "truncated_zip")


@pytest.mark.parametrize("data", [random.Random(0).randbytes(4096), tar_bytes(), b"PK"],
                         ids=["random", "tar", "two-bytes"])
def test_other_files_are_not_a_zip(tmp_path, data):
    refused(tmp_path, data, "not_a_zip")


def test_an_empty_file_is_refused(tmp_path):
    refused(tmp_path, b"", "empty_bundle")


@pytest.mark.parametrize("flag", [0x0001, 0x0040], ids=["encrypted", "strong-encryption"])
def test_encrypted_members_are_refused(tmp_path, flag):
    data = patched_in_both(zip_bytes(("metadata.json", b"{}")), 0, LOCAL_FLAGS, CENTRAL_FLAGS, "<H", flag)
    assert refused(tmp_path, data, "encrypted_member").details["member"] == "metadata.json"


def test_bzip2_members_are_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("metadata.json", b"{}")
    error = refused(tmp_path, buffer.getvalue(), "unsupported_compression")
    assert error.details["member"] == "metadata.json" and error.details["method"] == zipfile.ZIP_BZIP2


def test_unknown_compression_methods_are_refused(tmp_path):
    data = patched_in_both(zip_bytes(("metadata.json", b"{}")), 0, LOCAL_METHOD, CENTRAL_METHOD, "<H", 99)
    error = refused(tmp_path, data, "unsupported_compression")
    assert error.details["member"] == "metadata.json" and error.details["method"] == 99
