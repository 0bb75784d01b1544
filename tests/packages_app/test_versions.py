"""The default version rule: the highest version, unless an operator pinned another; and the order it ranks
a package's versions in, which /repo's releaseVersions follow."""

import random

from packages_app.versions import default_version, highest, release_order, sorted_versions


def test_a_pinned_version_ranks_above_every_other():
    versions = ["16.2", "2.0", "15.1"]
    assert release_order(versions) == ["2.0", "15.1", "16.2"] and default_version(versions) == "16.2"
    assert release_order(versions, "2.0") == ["15.1", "16.2", "2.0"] and default_version(versions, "2.0") == "2.0"
    # A pin on a version the list does not hold (a cluster does not see it) changes nothing.
    assert release_order(["15.1", "16.2"], "2.0") == ["15.1", "16.2"]
    assert default_version([]) is None and highest([]) is None


def test_the_order_never_depends_on_the_order_versions_come_in():
    # The rule finds 1.0 and 1.00, 1.0-RC1 and 1.0.rc1 equal: the strings decide between them.
    versions = ["1.00", "1.0", "1.0.rc1", "1.0-RC1", "0.9", "1.0-rc2"]
    expected = ["0.9", "1.0-RC1", "1.0.rc1", "1.0-rc2", "1.0", "1.00"]
    for seed in range(20):
        random.Random(seed).shuffle(versions)
        assert sorted_versions(versions) == expected and highest(versions) == "1.00"
