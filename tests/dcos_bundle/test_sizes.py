"""Sizes for people, next to the exact byte counts, and the sizes people type."""

import pytest

from dcos_bundle.sizes import human_size, parse_size


@pytest.mark.parametrize("count, shown", [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"),
                                          (10 * 1024 ** 2, "10.0 MiB"), (5 * 1024 ** 3 + 1, "5.0 GiB"),
                                          (3 * 1024 ** 5, "3072.0 TiB")])
def test_sizes_are_shown_for_people(count, shown):
    assert human_size(count) == shown


@pytest.mark.parametrize("text, count", [("8388608", 8388608), ("512K", 512 * 1024), ("512KiB", 512 * 1024),
                                         ("8m", 8 * 1024 ** 2), ("4G", 4 * 1024 ** 3), ("1TB", 1024 ** 4)])
def test_typed_sizes_are_read_in_powers_of_1024(text, count):
    assert parse_size(text) == count


@pytest.mark.parametrize("text", ["0", "", "1.5G", "-1", "4X", "G"])
def test_what_is_no_size_is_refused(text):
    with pytest.raises(ValueError, match="is not a positive size"):
        parse_size(text)
