"""Sizes for people, next to the exact byte counts."""

import pytest

from dcos_bundle.sizes import human_size


@pytest.mark.parametrize("count, shown", [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"),
                                          (10 * 1024 ** 2, "10.0 MiB"), (5 * 1024 ** 3 + 1, "5.0 GiB"),
                                          (3 * 1024 ** 5, "3072.0 TiB")])
def test_sizes_are_shown_for_people(count, shown):
    assert human_size(count) == shown
