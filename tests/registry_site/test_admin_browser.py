"""The admin in a real browser (headless Chromium): log in, read a job and its version, remove a version."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from packages_app.models import PackageVersion
from tests.registry_site.test_admin import bundle, upload
from tests.services import service_missing

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TIMEOUT = 10

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("registry")]


@pytest.fixture
def browser():
    for program in (CHROMIUM, CHROMEDRIVER):
        if not os.access(program, os.X_OK):
            service_missing("Chromium", f"{program} is missing (Debian packages chromium and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, selector: str):
    return WebDriverWait(driver, TIMEOUT).until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, selector)))


def test_an_operator_logs_in_reads_a_job_and_removes_a_version(browser, live_server, client, tmp_path,
                                                                 django_user_model):
    django_user_model.objects.create_superuser("operator", "operator@example.invalid", "a-test-password")
    job = upload(client, bundle(tmp_path, "1.0.0", seed=1))
    upload(client, bundle(tmp_path, "2.0.0", seed=2))
    removed = job.package_version

    browser.get(live_server.url + reverse("admin:index"))
    wait_for(browser, "#id_username").send_keys("operator")
    browser.find_element(By.ID, "id_password").send_keys("a-test-password")
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    assert "Storage status" in wait_for(browser, "#registry-operations").text

    browser.get(live_server.url + reverse("admin:ingest_ingestjob_change", args=[job.pk]))
    assert wait_for(browser, ".field-state .readonly").text == "Succeeded"
    assert browser.find_element(By.CSS_SELECTOR, ".field-progress .readonly").text == "Publish (100.0%)"
    browser.find_element(By.LINK_TEXT, "hello 1.0.0").click()
    assert wait_for(browser, ".field-version .readonly").text == "1.0.0"

    browser.get(live_server.url + reverse("admin:packages_app_packageversion_changelist"))
    wait_for(browser, f"input[name=_selected_action][value='{removed.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("remove")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    garbage = wait_for(browser, "#garbage-blobs").text
    assert removed.blob_links.get(role="layer").blob_id in garbage
    assert "hello 2.0.0" in browser.find_element(By.ID, "kept-blobs").text
    browser.find_element(By.CSS_SELECTOR, "input[value='Yes, remove them']").click()
    assert "Removed 1 version(s): hello 1.0.0." in wait_for(browser, ".messagelist").text
    assert list(PackageVersion.objects.values_list("version", flat=True)) == ["2.0.0"]
