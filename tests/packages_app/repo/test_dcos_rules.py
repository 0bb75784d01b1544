"""What each DC/OS version gets: its version from Cosmos's User-Agent, its repository version, its escaping."""

from packages_app.repo.dcos_rules import dcos_version, escapes_quotes, highest_repo_version, release_key


def test_the_dcos_version_comes_from_the_user_agent():
    assert (dcos_version("cosmos/0.6.0 dcos/1.10.2"), dcos_version("cosmos/0.6.0"), dcos_version(None)) == (
        (1, 10, 2), None, None)


def test_repository_versions_and_escaping_by_dcos_version():
    assert [highest_repo_version(version) for version in (None, (1, 8), (1, 9, 5), (1, 10), (1, 11, 9), (1, 12),
                                                          (2, 2))] == ["v5", "v3", "v3", "v4", "v4", "v5", "v5"]
    assert escapes_quotes((1, 9, 5)) and not escapes_quotes((1, 10)) and not escapes_quotes(None)
    assert release_key("1.10") > release_key("1.9") and release_key("1.10") < release_key("1.10.0")
