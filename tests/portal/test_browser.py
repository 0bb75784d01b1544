"""The pages in a real browser (headless Chromium): browse and search a catalogue of a few hundred packages, a
package and a version, the cluster instructions, an upload interrupted by a reload and a dropped connection and
resumed, jobs moving live on their page and in the admin, and each kind of caller."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from access.tokens import create_token
from ingest.models import IngestJob, JobStage, UploadSession
from packages_app.models import Package, PackageVersion
from portal import views
from tests.actors import TEST_ACTOR
from tests.factories import ClusterFactory, ClusterPackageRuleFactory, IngestJobFactory, PackageVersionFactory
from tests.registry_site.test_admin import bundle
from tests.registry_site.test_admin_browser import TIMEOUT, browser, wait_for  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.browser
WORDS = ["stream", "store", "web", "queue", "graph", "search"]


def until(driver, condition, timeout: float = TIMEOUT):
    return WebDriverWait(driver, timeout).until(lambda _: condition())


def card_names(driver) -> list[str]:
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, ".card h2 a")]


def sign_in_with_token(driver, base: str, plaintext: str) -> None:
    driver.get(base + reverse("portal:sign-in"))
    wait_for(driver, "#token").send_keys(plaintext)
    driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_for(driver, "#signed-in-as")


def sign_in_as_staff(driver, base: str, django_user_model) -> None:
    django_user_model.objects.create_superuser("operator", "operator@example.invalid", "a-test-password")
    driver.get(base + reverse("admin:login"))
    wait_for(driver, "#id_username").send_keys("operator")
    driver.find_element(By.ID, "id_password").send_keys("a-test-password")
    driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait_for(driver, "#registry-operations")


@pytest.fixture
def many_packages(transactional_db):
    """300 packages of two versions each, tagged by kind."""
    packages = Package.objects.bulk_create(Package(name=f"{WORDS[n % len(WORDS)]}-{n:03}") for n in range(300))
    PackageVersion.objects.bulk_create(
        PackageVersion(package=package, version=f"1.{minor}.0", packaging_version="4.0", release_version=minor,
                       description=f"A {WORDS[n % len(WORDS)]} service.", tags=[WORDS[n % len(WORDS)]],
                       metadata={"packagingVersion": "4.0", "name": package.name, "version": f"1.{minor}.0"},
                       bundle_digest="sha256:" + "0" * 64, content_digest="sha256:" + "0" * 64)
        for n, package in enumerate(packages) for minor in range(2))
    return packages


def test_browse_search_filter_and_page_through_a_few_hundred_packages(browser, live_server, many_packages):
    browser.get(live_server.url + "/")
    assert wait_for(browser, "#result-count").text == "300 packages."
    assert len(card_names(browser)) == views.PAGE_SIZE
    search = browser.find_element(By.CSS_SELECTOR, "label[for=q] + input#q")
    search.send_keys("queue\n")
    until(browser, lambda: "matching “queue”" in browser.find_element(By.ID, "result-count").text)
    assert browser.find_element(By.ID, "result-count").text == "50 packages matching “queue”."
    assert all(name.startswith("queue-") for name in card_names(browser))
    browser.find_element(By.LINK_TEXT, "Next →").click()
    until(browser, lambda: "after=" in browser.current_url)
    assert card_names(browser)[0] == f"queue-{views.PAGE_SIZE * 6 + 3:03}"
    browser.find_element(By.LINK_TEXT, "Next →").click()
    until(browser, lambda: len(card_names(browser)) == 50 - 2 * views.PAGE_SIZE)
    assert not browser.find_elements(By.LINK_TEXT, "Next →")
    browser.find_element(By.LINK_TEXT, "← Previous").click()
    browser.find_element(By.LINK_TEXT, "← Previous").click()
    until(browser, lambda: card_names(browser)[0] == "queue-003")
    browser.get(live_server.url + "/")
    browser.find_element(By.CSS_SELECTOR, ".tags a[href='?tag=graph']").click()
    until(browser, lambda: "tagged “graph”" in browser.find_element(By.ID, "result-count").text)
    assert card_names(browser)[0] == "graph-004"


def test_a_package_page_and_a_version_page(browser, live_server, many_packages):
    browser.get(live_server.url + "/?q=web-002")
    wait_for(browser, ".card h2 a").click()
    assert wait_for(browser, "h1").text == "web-002"
    versions = browser.find_elements(By.CSS_SELECTOR, "#versions tbody th")
    assert [cell.text for cell in versions] == ["1.1.0 default", "1.0.0"]
    assert browser.find_element(By.ID, "install-command").text == "dcos package install web-002"
    browser.find_element(By.LINK_TEXT, "1.0.0").click()
    assert wait_for(browser, "h1").text == "web-002 1.0.0"
    assert browser.find_element(By.ID, "install-command").text == "dcos package install web-002 --package-version=1.0.0"


def test_the_cluster_instructions_can_be_copied(browser, live_server, transactional_db, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    ClusterFactory(name="prod", description="Production")
    browser.get(live_server.url + "/")
    wait_for(browser, "nav a[href='/getting-started/']").click()
    host = live_server.url.removeprefix("http://")
    assert wait_for(browser, "#repo-registry").text == f"dcos package repo add --index=0 registry {live_server.url}/repo"
    assert browser.find_element(By.ID, "repo-prod").text == (
        f"dcos package repo add --index=0 prod {live_server.url}/clusters/prod/repo")
    assert f'"insecure-registries": ["{host}"]' in browser.find_element(By.ID, "docker-trust").text
    assert browser.find_element(By.ID, "token-prod").text == (
        "python manage.py tokens create --name prod --scope read --cluster prod")
    button = browser.find_element(By.CSS_SELECTOR, "button[data-copy=repo-prod]")
    button.click()
    # Copied to the clipboard, or selected for the user to copy where the browser refuses.
    until(browser, lambda: button.text in ("Copied", "Select and copy"))


def test_each_caller_sees_its_own_catalogue(browser, live_server, transactional_db, settings, django_user_model):
    for name in ("kafka", "spark"):
        PackageVersionFactory(package__name=name)
    prod = ClusterFactory(name="prod", sees_all_packages=False)
    ClusterPackageRuleFactory(cluster=prod, package_name="kafka")
    browser.get(live_server.url + "/")
    assert card_names(browser) == ["kafka", "spark"]
    assert not browser.find_elements(By.LINK_TEXT, "Upload")

    sign_in_with_token(browser, live_server.url, create_token("prod", "write", prod, actor=TEST_ACTOR)[1])
    assert card_names(browser) == ["kafka"]
    assert "cluster prod" in browser.find_element(By.ID, "signed-in-as").text
    assert browser.find_elements(By.LINK_TEXT, "Upload")
    settings.ANONYMOUS_READS = False
    browser.find_element(By.CSS_SELECTOR, ".who button").click()
    wait_for(browser, "#token")
    assert "Sign in" in browser.find_element(By.TAG_NAME, "h1").text
    sign_in_as_staff(browser, live_server.url, django_user_model)
    assert browser.title.endswith("DC/OS Package Registry admin")
    browser.find_element(By.CSS_SELECTOR, "#user-tools a[href='/']").click()  # "View site"
    until(browser, lambda: card_names(browser) == ["kafka", "spark"])
    assert browser.find_elements(By.LINK_TEXT, "Admin") and browser.find_elements(By.LINK_TEXT, "Upload")


def uploaded_bytes(driver) -> int:
    return int(driver.find_element(By.ID, "upload-form").get_attribute("data-offset") or 0)


def test_an_upload_interrupted_by_a_reload_and_a_dropped_connection_resumes(
        browser, live_server, registry, tmp_path, monkeypatch, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    monkeypatch.setattr(views, "UPLOAD_CHUNK_BYTES", 1024)
    built = bundle(tmp_path, "1.0.0")
    size = built.path.stat().st_size
    assert size > 8 * 1024
    sign_in_with_token(browser, live_server.url, create_token("ci", "write", actor=TEST_ACTOR)[1])
    # A slow link: each chunk takes a while, so the reload lands in the middle of the upload.
    browser.set_network_conditions(latency=250, download_throughput=1024 * 1024, upload_throughput=64 * 1024)
    browser.get(live_server.url + reverse("portal:upload"))
    wait_for(browser, "#bundle-file").send_keys(str(built.path))
    until(browser, lambda: uploaded_bytes(browser) >= 3 * 1024)
    browser.refresh()

    session = UploadSession.objects.get()
    stopped_at = session.offset
    assert 0 < stopped_at < size
    wait_for(browser, "#bundle-file").send_keys(str(built.path))
    until(browser, lambda: browser.find_element(By.ID, "upload-form").get_attribute("data-resumed-at"))
    assert int(browser.find_element(By.ID, "upload-form").get_attribute("data-resumed-at")) >= stopped_at
    # The connection drops for a while: the page waits, asks the offset again and goes on.
    browser.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    until(browser, lambda: "connection is lost" in browser.find_element(By.ID, "upload-message").text)
    browser.set_network_conditions(latency=50, download_throughput=1024 * 1024, upload_throughput=256 * 1024)

    until(browser, lambda: browser.find_element(By.ID, "job-state").text == "succeeded", timeout=60)
    assert browser.find_element(By.ID, "job-result-link").text == "hello 1.0.0"
    assert UploadSession.objects.get().pk == session.pk  # one session, resumed: no byte sent twice over
    assert IngestJob.objects.get().package_version.version == "1.0.0"
    assert browser.execute_script("return Object.keys(localStorage).length") == 0


def running_job() -> IngestJob:
    job = IngestJobFactory(bundle_name="big.dcos", bundle_size=4 * 1024 * 1024, state=IngestJob.State.RUNNING,
                           stage=IngestJob.Stage.STORE, package_name="big", version="1.0.0",
                           started_at=timezone.now())
    finished = timezone.now() - timedelta(seconds=5)
    for stage in ("receive", "inspect", "validate", "verify_images"):
        JobStage.objects.create(job=job, stage=stage, bytes_done=10, bytes_total=10, finished_at=finished)
    JobStage.objects.create(job=job, stage="store", bytes_done=0, bytes_total=4 * 1024 * 1024)
    return job


def advance(job: IngestJob) -> None:
    JobStage.objects.filter(job=job, stage="store").update(bytes_done=2 * 1024 * 1024)


def test_a_job_moves_live_on_its_page(browser, live_server, transactional_db):
    job = running_job()
    browser.get(live_server.url + reverse("portal:job", args=[job.pk]))
    store = wait_for(browser, "tr[data-stage=store] .percent")
    until(browser, lambda: store.text == "0.0%")
    advance(job)
    until(browser, lambda: store.text == "50.0%")
    assert browser.find_element(By.CSS_SELECTOR, "tr[data-stage=store] .bytes").text == "2.0 MiB of 4.0 MiB"
    IngestJob.objects.filter(pk=job.pk).update(state=IngestJob.State.FAILED, error_code="blob_store_full",
                                               error_message="The blob store is full.")
    until(browser, lambda: browser.find_element(By.ID, "job-state").text == "failed")
    assert "blob_store_full: The blob store is full." == browser.find_element(By.ID, "job-error").text


def test_a_job_moves_live_in_the_admin(browser, live_server, transactional_db, django_user_model):
    job = running_job()
    sign_in_as_staff(browser, live_server.url, django_user_model)
    browser.get(live_server.url + reverse("admin:ingest_ingestjob_change", args=[job.pk]))
    progress = wait_for(browser, ".field-progress .readonly")
    assert progress.text == "Store: 0 bytes of 4.0 MiB (0.0%)"
    advance(job)
    until(browser, lambda: progress.text == "Store: 2.0 MiB of 4.0 MiB (50.0%)")
    assert browser.find_element(By.CSS_SELECTOR, "tr[data-stage=store] .field-percent p").text == "50.0"
    assert browser.find_element(By.CSS_SELECTOR, "tr[data-stage=store] .field-done p").text == "2.0 MiB"
    IngestJob.objects.filter(pk=job.pk).update(state=IngestJob.State.SUCCEEDED, stage=IngestJob.Stage.PUBLISH)
    JobStage.objects.create(job=job, stage="publish", bytes_done=0, bytes_total=0, finished_at=timezone.now())
    until(browser, lambda: browser.find_element(By.CSS_SELECTOR, ".field-state .readonly").text == "Succeeded")
    assert browser.find_element(By.CSS_SELECTOR, "tr[data-stage=publish] .field-stage p").text == "Publish"
