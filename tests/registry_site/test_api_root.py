"""The API's root names every collection; a browser gets the browsable API, and a format it cannot have is a 406."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

# What a browser asks for when it opens a page.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_the_root_links_every_collection_and_each_link_answers(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200
    links = response.json()
    assert links["packages"] == "http://testserver/api/v1/packages/"
    assert links["repo"] == "http://testserver/repo"
    assert {"clusters", "bundles", "uploads", "jobs", "tokens", "audit", "exports", "imports", "schema", "docs"} <= set(links)
    # Every link is an endpoint of this registry: none is a 404 (reading some of them needs a token).
    for url in links.values():
        assert client.get(url.removeprefix("http://testserver")).status_code != 404, url


def test_a_browser_gets_the_browsable_api_and_scripts_still_get_json(client):
    page = client.get("/api/v1/packages/", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b"Package List" in page.content or b"packages" in page.content
    assert client.get("/api/v1/packages/?format=api")["Content-Type"].startswith("text/html")
    assert client.get("/api/v1/packages/", HTTP_ACCEPT="*/*")["Content-Type"] == "application/json"


def test_a_format_the_api_cannot_answer_is_a_406_in_the_api_shape(client):
    response = client.get("/api/v1/packages/", HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    body = response.json()
    assert body["code"] == "not_acceptable"
    assert body["message"]


def test_every_collection_renders_in_the_browsable_api_for_staff(admin_client):
    """Staff see every form the browsable API draws (uploads, tokens, transfers): none of them fails to render."""
    links = admin_client.get("/api/v1/").json()
    for name, url in links.items():
        if name in ("schema", "docs", "repo"):
            continue
        response = admin_client.get(url.removeprefix("http://testserver"), HTTP_ACCEPT=BROWSER_ACCEPT)
        assert response.status_code in (200, 405), (url, response.status_code)
        if response.status_code == 200:
            assert response["Content-Type"].startswith("text/html"), url
