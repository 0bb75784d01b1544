"""The rendered repository is kept per process and follows the catalogue: its own changes at once, through
the model signals the app connects when it is ready; others' within REPO_FRESHNESS_SECONDS."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from packages_app.models import PackageVersion
from packages_app.repo import cache, views
from tests.bundles import make_bundle
from tests.factories import ClusterFactory, ClusterPackageRuleFactory
from tests.packages_app.test_universe_repo import COSMOS_ACCEPT, ERROR_TYPE, REPO_TYPE, get_repo, packages_of, upload

pytestmark = pytest.mark.usefixtures("registry")


def test_the_cache_follows_publishing_and_removal(client, hello, tmp_path):
    before = get_repo(client)
    assert set(packages_of(before)) == {("hello", "1.0.0")}
    assert get_repo(client)["ETag"] == before["ETag"]

    built = make_bundle(tmp_path / "v2", version="2.0.0", images=[])
    assert upload(client, built.path)["state"] == "succeeded"
    after_publish = get_repo(client, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after_publish.status_code == 200
    assert set(packages_of(after_publish)) == {("hello", "1.0.0"), ("hello", "2.0.0")}

    PackageVersion.objects.get(package__name="hello", version="1.0.0").delete()
    after_delete = get_repo(client, HTTP_IF_NONE_MATCH=after_publish["ETag"])
    assert after_delete.status_code == 200
    assert set(packages_of(after_delete)) == {("hello", "2.0.0")}
    assert after_delete["ETag"] not in (before["ETag"], after_publish["ETag"])


def unavailable(*args, **kwargs):
    raise OperationalError("connection to server at db.internal failed: Connection refused")


def test_a_database_outage_serves_the_last_rendering(client, hello, monkeypatch, settings):
    settings.OUTAGE_RETRY_AFTER_SECONDS = 7
    served = get_repo(client)
    monkeypatch.setattr(cache.RepoCache, "current_generation", staticmethod(unavailable))
    assert get_repo(client).content == served.content
    # A process that never read the catalogue has nothing to fall back on: 503 in Cosmos's error shape.
    monkeypatch.setattr(cache, "repo_cache", cache.RepoCache())
    response = get_repo(client)
    assert (response.status_code, response["Content-Type"], response["Retry-After"]) == (503, ERROR_TYPE, "7")
    assert response.json()["type"] == "ServiceUnavailable"


def test_while_the_database_is_away_each_request_is_answered_as_it_was_last_time(
        client, anonymous_client, hello, tmp_path, monkeypatch, settings):
    settings.OUTAGE_RETRY_AFTER_SECONDS = 7
    assert upload(client, make_bundle(tmp_path / "other", name="other", images=[]).path)["state"] == "succeeded"
    ClusterPackageRuleFactory(cluster=ClusterFactory(name="edge", sees_all_packages=False), package_name="other")
    answers = {
        "cluster": lambda: anonymous_client.get("/clusters/edge/repo", HTTP_ACCEPT=COSMOS_ACCEPT),
        "token": lambda: get_repo(client, dcos="1.8"),
        "gzip": lambda: get_repo(anonymous_client, HTTP_ACCEPT_ENCODING="gzip"),
    }
    before = {name: answer() for name, answer in answers.items()}
    assert set(packages_of(before["cluster"])) == {("other", "1.0.0")}
    assert before["token"]["Content-Type"] == REPO_TYPE.format("v3")

    # Every read of the database fails: the catalogue, the cluster and its rules, the token.
    monkeypatch.setattr(cache.RepoCache, "current_generation", staticmethod(unavailable))
    monkeypatch.setattr(views, "find_cluster", unavailable)
    monkeypatch.setattr(views, "reader_of", unavailable)
    for name, answer in answers.items():
        during = answer()
        assert during.status_code == 200, name
        assert (during.content, during["Content-Type"], during["ETag"]) == (
            before[name].content, before[name]["Content-Type"], before[name]["ETag"]), name
    assert get_repo(anonymous_client, HTTP_IF_NONE_MATCH=before["gzip"]["ETag"].replace("-gzip", "")).status_code == 304

    # Nobody asked for this before: nothing to answer it with.
    never_asked = anonymous_client.get("/clusters/edge/repo", HTTP_ACCEPT=REPO_TYPE.format("v4"))
    assert (never_asked.status_code, never_asked["Retry-After"]) == (503, "7")
    assert never_asked.json()["type"] == "ServiceUnavailable" and b"db.internal" not in never_asked.content


def test_this_processs_own_changes_are_served_at_once(client, hello, tmp_path, settings):
    settings.REPO_FRESHNESS_SECONDS = 3600
    assert set(packages_of(get_repo(client))) == {("hello", "1.0.0")}
    # Within the hour only the signals tell the cache that the catalogue changed.
    assert upload(client, make_bundle(tmp_path / "v2", version="2.0.0", images=[]).path)["state"] == "succeeded"
    assert set(packages_of(get_repo(client))) == {("hello", "1.0.0"), ("hello", "2.0.0")}
    PackageVersion.objects.get(version="1.0.0").delete()
    assert set(packages_of(get_repo(client))) == {("hello", "2.0.0")}
