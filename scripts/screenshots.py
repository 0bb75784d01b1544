"""Screenshots of the registry's main pages, for docs/screenshots/: a registry of its own on 127.0.0.1 (embedded
defaults in a temporary directory), filled with the latest revision of some Universe packages from the shared
corpus (metadata only) and one built bundle with a file and an image, photographed by headless Chromium.

    .venv/bin/python scripts/screenshots.py [--port 18410] [--packages 60] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.serve import UPLOADER, registry_env, start_registry, stop, upload  # noqa: E402
from dcos_bundle.universe.migrate import metadata_from_package_directory  # noqa: E402
from tests.bundles import AssetSpec, ImageSpec, make_bundle  # noqa: E402
from tests.corpus import package_dirs  # noqa: E402
from tests.processes import manage  # noqa: E402

WIDTH = 1280


def latest_revisions(count: int) -> list[Path]:
    """The highest revision directory of the first ``count`` packages, by name."""
    latest: dict[str, Path] = {}
    for revision in package_dirs():
        name = revision.parent.name
        if name not in latest or int(revision.name) > int(latest[name].name):
            latest[name] = revision
    return [latest[name] for name in sorted(latest)[:count]]


def fill(base_url: str, work: Path, count: int) -> None:
    for revision in latest_revisions(count):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("metadata.json", json.dumps(metadata_from_package_directory(revision)))
        upload(base_url, buffer.getvalue())
    built = make_bundle(work / "bundles", name="hello-world", version="2.1.0",
                        assets=[AssetSpec("cli", "hello-cli.tgz", 3 * 1024 * 1024, 1)],
                        images=[ImageSpec("server", "example/hello-world:2.1.0", [2 * 1024 * 1024, 512 * 1024])])
    upload(base_url, built.path.read_bytes())
    UPLOADER.post(f"{base_url}/api/v1/clusters/", json={
        "name": "prod", "description": "Production, DC/OS 2.2", "dcos_version": "2.2", "sees_all_packages": False,
        "rules": [{"package_name": "hello-world"}, {"package_name": "cassandra"}]}, timeout=30).raise_for_status()
    UPLOADER.post(f"{base_url}/api/v1/clusters/", json={"name": "staging", "description": "Everything"},
                  timeout=30).raise_for_status()


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                     "--hide-scrollbars", f"--window-size={WIDTH},900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shoot(driver, url: str, path: Path, ready: str = "main", max_height: int = 2000) -> None:
    driver.get(url)
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
    height = min(driver.execute_script("return document.documentElement.scrollHeight"), max_height)
    driver.set_window_size(WIDTH, height)
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, 900)
    print(f"{path}  ({url})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=18410)
    parser.add_argument("--packages", type=int, default=60)
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory(prefix="screenshots-") as work:
        work = Path(work)
        # As `make run` does: the admin's and the pages' styles and scripts, served by WhiteNoise.
        manage("collectstatic", "--no-input", "--verbosity", "0", env=registry_env(work, args.port))
        registry = start_registry(work, args.port)
        driver = None
        try:
            fill(base, work, args.packages)
            env = {**registry_env(work, args.port), "DJANGO_SUPERUSER_PASSWORD": "screenshots-only"}
            manage("createsuperuser", "--no-input", "--username", "operator", "--email", "op@example.invalid",
                   env=env)
            driver = browser()
            shoot(driver, f"{base}/", args.out / "catalogue.png", ".card")
            shoot(driver, f"{base}/?q=data", args.out / "search.png", "#result-count")
            shoot(driver, f"{base}/packages/cassandra/", args.out / "package.png", "#versions")
            shoot(driver, f"{base}/packages/hello-world/2.1.0/", args.out / "version.png", "#images")
            shoot(driver, f"{base}/getting-started/", args.out / "getting-started.png", "#clusters")
            driver.get(f"{base}/admin/login/?next=/admin/")
            driver.find_element(By.ID, "id_username").send_keys("operator")
            driver.find_element(By.ID, "id_password").send_keys("screenshots-only")
            driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
            WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "registry-operations"))
            jobs = requests.get(f"{base}/api/v1/jobs/?package=hello-world", timeout=10).json()["results"]
            shoot(driver, f"{base}/jobs/{jobs[0]['id']}/", args.out / "job.png", "#job-stages")
            shoot(driver, f"{base}/upload/", args.out / "upload.png", "#drop-zone")
            shoot(driver, f"{base}/admin/ingest/ingestjob/", args.out / "admin-jobs.png", "#result_list", 1100)
            shoot(driver, f"{base}/admin/ingest/ingestjob/{jobs[0]['id']}/change/", args.out / "admin-job.png",
                  ".registry-stages")
        finally:
            if driver is not None:
                driver.quit()
            stop(registry)


if __name__ == "__main__":
    main()
