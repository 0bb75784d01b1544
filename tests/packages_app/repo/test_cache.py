"""The rendered repository is kept per process and follows the catalogue: its own changes at once, through
the model signals the app connects when it is ready; others' within REPO_FRESHNESS_SECONDS."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from packages_app.models import PackageVersion
from packages_app.repo import cache
from tests.bundles import make_bundle
from tests.packages_app.test_universe_repo import ERROR_TYPE, get_repo, packages_of, upload

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


def test_a_database_outage_serves_the_last_rendering(client, hello, monkeypatch):
    def unavailable():
        raise DatabaseError("connection refused")

    served = get_repo(client)
    monkeypatch.setattr(cache.RepoCache, "current_generation", staticmethod(unavailable))
    assert get_repo(client).content == served.content
    # A process that never read the catalogue has nothing to fall back on: 503 in Cosmos's error shape.
    monkeypatch.setattr(cache, "repo_cache", cache.RepoCache())
    response = get_repo(client)
    assert (response.status_code, response["Content-Type"]) == (503, ERROR_TYPE)
    assert response.json()["type"] == "ServiceUnavailable"


def test_this_processs_own_changes_are_served_at_once(client, hello, tmp_path, settings):
    settings.REPO_FRESHNESS_SECONDS = 3600
    assert set(packages_of(get_repo(client))) == {("hello", "1.0.0")}
    # Within the hour only the signals tell the cache that the catalogue changed.
    assert upload(client, make_bundle(tmp_path / "v2", version="2.0.0", images=[]).path)["state"] == "succeeded"
    assert set(packages_of(get_repo(client))) == {("hello", "1.0.0"), ("hello", "2.0.0")}
    PackageVersion.objects.get(version="1.0.0").delete()
    assert set(packages_of(get_repo(client))) == {("hello", "2.0.0")}
