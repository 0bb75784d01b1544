"""The pages with Django's test client: what each caller sees, as the APIs decide it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from access.tokens import create_token, revoke_token
from ingest.models import IngestJob, UploadSession
from packages_app.coordinates import resource_path
from portal import views
from tests.actors import TEST_ACTOR
from tests.factories import (
    IngestJobFactory,
    PackageFactory,
    PackageVersionFactory,
    VersionBlobFactory,
)
from tests.portal.conftest import signed_in
from tests.registry_site.test_admin import bundle, upload


def names_on(page) -> list[str]:
    return re.findall(r'<h2><a href="/packages/[^/]+/">([^<]+)</a></h2>', page.content.decode())


def test_the_catalogue_lists_searches_and_filters_by_tag(anonymous_client, two_packages):
    assert names_on(anonymous_client.get("/")) == ["kafka", "spark"]
    assert names_on(anonymous_client.get("/?q=big")) == ["spark"]
    assert names_on(anonymous_client.get("/?q=queue+kaf")) == ["kafka"]
    assert names_on(anonymous_client.get("/?tag=analytics")) == ["spark"]
    page = anonymous_client.get("/?q=nothing-like-it").content.decode()
    assert "No package matches" in page and '<p id="result-count" class="count" aria-live="polite">0 packages' in page
    # Its default version speaks for the package.
    assert 'Latest <a href="/packages/kafka/2.0.0/">2.0.0</a> · 2 versions' in anonymous_client.get("/").content.decode()


def test_a_card_shows_the_icon_the_version_stored_and_its_certified_flag(anonymous_client, db):
    icon = "https://downloads.example.invalid/kafka-icon-medium.png"
    version = PackageVersionFactory(package__name="kafka", version="1.0.0", metadata={
        "packagingVersion": "4.0", "name": "kafka", "version": "1.0.0", "selected": True,
        "resource": {"images": {"icon-small": "https://elsewhere.invalid/s.png", "icon-medium": icon}},
    })
    link = VersionBlobFactory(version=version, name=icon)
    # An icon the version did not store is not shown: the browser would go outside the air gap.
    PackageVersionFactory(package__name="zookeeper", metadata={
        "packagingVersion": "4.0", "name": "zookeeper", "version": "1.0.0",
        "resource": {"images": {"icon-medium": "https://elsewhere.invalid/z.png"}}})
    page = anonymous_client.get("/").content.decode()
    path = resource_path("kafka", "1.0.0", link.blob_id, "kafka-icon-medium.png")
    assert f'<img class="icon" src="{path}"' in page
    assert page.count('<img class="icon"') == 1
    assert '<p class="flag certified">Certified</p>' in page and '<p class="flag community">Community</p>' in page


def test_pages_follow_the_names_at_their_edges_with_the_same_queries_whatever_the_size(
        anonymous_client, db, django_assert_max_num_queries):
    for number in range(views.PAGE_SIZE * 2 + 5):
        PackageVersionFactory(package__name=f"pkg-{number:03}", tags=["many"])
    with django_assert_max_num_queries(8):
        first = anonymous_client.get("/")
    assert names_on(first)[0] == "pkg-000" and len(names_on(first)) == views.PAGE_SIZE
    assert 'href="?after=pkg-023"' in first.content.decode() and 'rel="prev"' not in first.content.decode()
    second = anonymous_client.get("/?after=pkg-023")
    assert names_on(second)[0] == "pkg-024"
    last = anonymous_client.get("/?after=pkg-047")
    assert names_on(last) == ["pkg-048", "pkg-049", "pkg-050", "pkg-051", "pkg-052"]
    assert 'rel="next"' not in last.content.decode()
    back = anonymous_client.get("/?before=pkg-048")
    assert names_on(back) == names_on(second)


def test_the_package_page_shows_its_notes_links_and_every_version(anonymous_client, db):
    package = PackageFactory(name="kafka", pinned_version="1.0.0")
    metadata = {"packagingVersion": "4.0", "name": "kafka", "version": "1.0.0", "description": "Kafka, pinned",
                "maintainer": "kafka@example.invalid", "website": "https://kafka.example.invalid",
                "preInstallNotes": "Needs 3 agents.", "postInstallNotes": "Ready soon.",
                "licenses": [{"name": "Apache License 2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}]}
    PackageVersionFactory(package=package, version="1.0.0", metadata=metadata, min_dcos_release_version="1.10")
    PackageVersionFactory(package=package, version="2.0.0")
    page = anonymous_client.get("/packages/kafka/").content.decode()
    assert "Kafka, pinned" in page and "Needs 3 agents." in page and "Ready soon." in page
    assert "Apache License 2.0" in page and "kafka@example.invalid" in page
    rows = re.findall(r'<tr( class="default")?>\s*<th scope="row"><a href="/packages/kafka/([^/]+)/">', page)
    assert rows == [("", "2.0.0"), (' class="default"', "1.0.0")]
    assert "<td>1.10</td>" in page
    assert "dcos package install kafka</code>" in page


def test_a_license_link_is_never_a_script(anonymous_client, db):
    PackageVersionFactory(package__name="kafka", metadata={
        "packagingVersion": "4.0", "name": "kafka", "version": "1.0.0",
        "licenses": [{"name": "Sneaky", "url": "javascript:alert(1)"}]})
    page = anonymous_client.get("/packages/kafka/").content.decode()
    assert "Sneaky" in page and "javascript:" not in page


def test_the_version_page_shows_options_images_files_and_its_upload_job(client, registry, tmp_path):
    job = upload(client, bundle(tmp_path, "1.0.0"))
    version = job.package_version
    page = signed_in_page(client, "/packages/hello/1.0.0/")
    # The config schema of tests.bundles: each option with its type, default and description.
    assert re.search(r'<code>[\w.]+</code>', page)
    for option in version.metadata["config"]["properties"]:
        assert f"<code>{option}" in page
    image = version.blob_links.get(role="manifest")
    assert f"docker pull 127.0.0.1:8000/example/hello@{image.blob_id}" in page
    asset = version.blob_links.get(role="asset")
    assert "payload.tgz" in page and "2.9 KiB" in page and asset.blob_id in page
    assert f'<a href="/jobs/{job.pk}/">{job.bundle_name}</a>' in page


def signed_in_page(token_client, path: str) -> str:
    """``path`` as the browser of the token ``token_client`` carries sees it."""
    plaintext = token_client.defaults["HTTP_AUTHORIZATION"].split()[1]
    response = signed_in(plaintext).get(path)
    assert response.status_code == 200, response.content
    return response.content.decode()


def test_unknown_packages_and_versions_are_not_found(anonymous_client, two_packages):
    assert anonymous_client.get("/packages/nothing/").status_code == 404
    assert "Version [9.9] of package [kafka] not found" in anonymous_client.get(
        "/packages/kafka/9.9/").content.decode()


def test_without_anonymous_reads_every_page_asks_to_sign_in(anonymous_client, two_packages, settings):
    settings.ANONYMOUS_READS = False
    for path in ["/", "/packages/kafka/", "/packages/kafka/2.0.0/", "/getting-started/", "/upload/"]:
        response = anonymous_client.get(path)
        assert response.status_code == 401, path
        assert b'<input id="token" name="token" type="password"' in response.content
    reader = signed_in(create_token("reader", "read", actor=TEST_ACTOR)[1])
    assert names_on(reader.get("/")) == ["kafka", "spark"]


def test_with_anonymous_reads_anyone_reads_but_only_writers_upload(anonymous_client, two_packages):
    assert anonymous_client.get("/").status_code == 200
    refused = anonymous_client.get("/upload/")
    assert refused.status_code == 403 and b"Sign in to upload." in refused.content
    reader = signed_in(create_token("reader", "read", actor=TEST_ACTOR)[1])
    assert b"Uploading needs the write scope" in reader.get("/upload/").content


def test_a_cluster_token_session_sees_only_its_cluster(prod_session, two_packages):
    assert names_on(prod_session.get("/")) == ["kafka"]
    assert prod_session.get("/packages/spark/").status_code == 404
    assert prod_session.get("/packages/spark/3.1.0/").status_code == 404
    assert prod_session.get("/packages/kafka/2.0.0/").status_code == 200
    header = prod_session.get("/").content.decode()
    assert "token:prod ci" in header and "cluster prod" in header
    started = prod_session.get("/getting-started/").content.decode()
    assert "/clusters/prod/repo" in started and "/clusters/dev/repo" not in started
    assert prod_session.get("/upload/").status_code == 200


def test_jobs_show_to_whom_the_job_api_shows_them(prod_session, two_packages, anonymous_client):
    theirs = IngestJobFactory(bundle_name="other.dcos")
    ours = IngestJobFactory(bundle_name="ours.dcos", cluster=two_packages["prod"])
    assert prod_session.get(f"/jobs/{theirs.pk}/").status_code == 404
    page = prod_session.get(f"/jobs/{ours.pk}/").content.decode()
    assert f'data-job-url="/api/v1/jobs/{ours.pk}/"' in page
    assert [stage for stage in re.findall(r'<tr data-stage="(\w+)">', page)] == IngestJob.Stage.values
    assert anonymous_client.get(f"/jobs/{theirs.pk}/").status_code == 200


def test_staff_see_everything_and_upload(admin_client, two_packages):
    assert names_on(admin_client.get("/")) == ["kafka", "spark"]
    page = admin_client.get("/upload/").content.decode()
    assert 'data-uploads-url="/api/v1/uploads/"' in page and 'href="/admin/"' in page
    started = admin_client.get("/getting-started/").content.decode()
    assert "/clusters/prod/repo" in started and "/clusters/dev/repo" in started


def test_the_cluster_instructions_are_exact(anonymous_client, two_packages, settings):
    settings.PUBLIC_BASE_URL = "https://registry.example.com"
    page = anonymous_client.get("/getting-started/").content.decode()
    assert "dcos package repo add --index=0 registry https://registry.example.com/repo</code>" in page
    assert "dcos package repo add --index=0 prod https://registry.example.com/clusters/prod/repo</code>" in page
    assert "sudo cp ca.crt /etc/docker/certs.d/registry.example.com/ca.crt" in page
    assert "python manage.py tokens create --name prod --scope read --cluster prod</code>" in page
    settings.PUBLIC_BASE_URL, settings.ANONYMOUS_READS = "http://10.0.0.5:8000", False
    reader = signed_in(create_token("reader", "read", actor=TEST_ACTOR)[1])
    page = reader.get("/getting-started/").content.decode()
    assert "&quot;insecure-registries&quot;: [&quot;10.0.0.5:8000&quot;]" in page
    assert "docker login 10.0.0.5:8000 -u any -p &lt;token&gt;" in page


def test_signing_in_with_a_bad_token_says_so_and_a_revoked_token_ends_the_session(two_packages, settings):
    browser = Client()
    refused = browser.post("/sign-in/", {"token": "dcr_nothing", "next": "/"})
    assert refused.status_code == 400 and b"The token is not valid" in refused.content
    settings.ANONYMOUS_READS = False
    token, plaintext = create_token("reader", "read", actor=TEST_ACTOR)
    browser = signed_in(plaintext)
    assert browser.get("/").status_code == 200
    revoke_token(token, actor=TEST_ACTOR)
    assert browser.get("/").status_code == 401


def test_sign_in_goes_back_only_to_this_site_and_sign_out_ends_the_session(two_packages, settings):
    plaintext = create_token("reader", "read", actor=TEST_ACTOR)[1]
    browser = Client()
    assert browser.post("/sign-in/", {"token": plaintext, "next": "/packages/kafka/"})["Location"] == "/packages/kafka/"
    assert browser.post("/sign-in/", {"token": plaintext, "next": "https://evil.invalid/"})["Location"] == "/"
    settings.ANONYMOUS_READS = False
    assert browser.post("/sign-out/").status_code == 302
    assert browser.get("/").status_code == 401


def test_a_token_session_uses_the_api_as_its_token_with_the_csrf_check(two_packages):
    plaintext = create_token("writer", "write", actor=TEST_ACTOR)[1]
    browser = signed_in(plaintext, enforce_csrf_checks=True)
    body = {"size": 10, "file_name": "x.dcos"}
    assert browser.post("/api/v1/uploads/", body, content_type="application/json").status_code == 403
    browser.get("/upload/")
    csrf = browser.cookies["csrftoken"].value
    opened = browser.post("/api/v1/uploads/", body, content_type="application/json", headers={"X-CSRFToken": csrf})
    assert opened.status_code == 201, opened.content
    assert UploadSession.objects.get(pk=opened.json()["id"]).created_by.startswith("token:writer (")


@pytest.mark.parametrize("path", ["/", "/packages/kafka/", "/packages/kafka/2.0.0/", "/getting-started/", "/upload/",
                                  "/sign-in/"])
def test_every_field_has_a_label_and_every_image_an_alt(admin_client, two_packages, path):
    page = admin_client.get(path).content.decode()
    fields = re.findall(r'<input (?![^>]*type="(?:hidden|checkbox)")[^>]*id="([^"]+)"', page)
    fields += re.findall(r'<input [^>]*type="checkbox"[^>]*id="([^"]+)"', page)
    for field in fields:
        assert f'<label for="{field}"' in page, (path, field)
    assert "<img " not in page.replace('<img class="icon', "") or all(
        ' alt="' in tag for tag in re.findall(r"<img [^>]*>", page))
    assert 'href="#main"' in page and '<main id="main"' in page
