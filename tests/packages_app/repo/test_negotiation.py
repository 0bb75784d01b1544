"""Which repository version a client accepts, gzip, and If-None-Match."""

from packages_app.repo.negotiation import accepted_repo_versions, choose_repo_version, gzip_accepted
from tests.packages_app.test_universe_repo import REPO_TYPE


def test_accept_parsing():
    v = REPO_TYPE.format
    assert accepted_repo_versions(None) == {"v3": 1.0, "v4": 1.0, "v5": 1.0}
    assert accepted_repo_versions("application/json") == {}
    assert accepted_repo_versions(f"{v('v4')}, {v('v3')};q=0.5") == {"v4": 1.0, "v3": 0.5}
    # The most specific range decides: here v5 is refused although */* takes anything.
    assert accepted_repo_versions(f"*/*, {v('v5')};q=0") == {"v3": 1.0, "v4": 1.0}
    assert accepted_repo_versions("application/vnd.dcos.universe.repo+json;q=0.3") == dict.fromkeys(
        ("v3", "v4", "v5"), 0.3)
    assert accepted_repo_versions('Application/VND.dcos.universe.repo+JSON; version="v4" ;Charset=UTF-8') == {
        "v4": 1.0}
    assert accepted_repo_versions(f"{v('v4')};level=1, {v('v9')}, {v('v3')};q=abc") == {}


def test_the_clients_favourite_up_to_what_its_cluster_reads():
    assert choose_repo_version({"v3": 0.5, "v4": 1.0, "v5": 1.0}, "v5") == "v5"
    assert choose_repo_version({"v3": 0.5, "v4": 1.0, "v5": 1.0}, "v3") == "v3"
    assert choose_repo_version({"v3": 1.0, "v5": 0.2}, "v5") == "v3"
    assert choose_repo_version({"v5": 1.0}, "v4") is None


def test_gzip():
    assert gzip_accepted("gzip, deflate") and gzip_accepted("*") and gzip_accepted("br;q=1, GZIP;q=0.1")
    assert not gzip_accepted(None) and not gzip_accepted("gzip;q=0, *") and not gzip_accepted("identity")
