"""A wiped registry comes back whole from one `manage.py restore`, run as its own process into an empty database and
a fresh data directory: its clusters' repositories, its tokens, its admin users and its audit log."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from selenium.webdriver.common.by import By

from access.models import ApiToken
from blobs.store import blob_store
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from tests.bundles import make_bundle
from tests.operations.test_backup import ROOT_PASSWORD, bearer, create_access, publish
from tests.packages_app.test_universe_repo import COSMOS_ACCEPT
from tests.processes import PROJECT_DIR, free_port, get_json, manage, registry_env, stop, wait_until
from tests.registry_site.test_admin_browser import browser, wait_for  # noqa: F401  (browser: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("registry")]
# What a DC/OS 2.2 cluster's Cosmos sends for its repository.
COSMOS = {"Accept": COSMOS_ACCEPT, "User-Agent": "cosmos/0.6.0 dcos/2.2.0"}


@pytest.fixture
def empty_database(postgres_database) -> str:
    """The URL of a new, empty database on the test server: what a wiped registry's database is."""
    name = f"{connection.settings_dict['NAME']}_wiped_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_database.rsplit('/', 1)[0]}/{name}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fetch(url: str, token: str, *, headers: dict[str, str] | None = None, data: bytes | None = None
          ) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers={**(headers or {}), **bearer(token)})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def s3_settings(connection_: dict) -> dict[str, str]:
    return {"S3_ENDPOINT_URL": connection_["endpoint_url"], "S3_ACCESS_KEY_ID": connection_["access_key_id"],
            "S3_SECRET_ACCESS_KEY": connection_["secret_access_key"], "S3_REGION": connection_["region"]}


@pytest.mark.browser
@pytest.mark.parametrize("target_kind", ["directory", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_wiped_registry_comes_back_whole_from_one_restore_command(
        target_kind, request, client, operator_token, settings, tmp_path, postgres_database, empty_database, browser):
    data = tmp_path / "data"
    public = f"http://127.0.0.1:{free_port()}"
    # The registry keeps its blobs in its data directory, and is served at the URL the restored one will be.
    settings.STORAGE_URL = (data / "storage").as_uri()
    settings.PUBLIC_BASE_URL = public
    blob_store.cache_clear()
    if target_kind == "s3":
        _, bucket, s3 = request.getfixturevalue("s3_bucket")
        target, target_settings = f"s3://{bucket}/backup-{uuid.uuid4().hex[:8]}", s3_settings(s3)
    else:
        target, target_settings = str(tmp_path / "backup"), {}

    publish(client, tmp_path, "hello", "1.0.0", 1)
    publish(client, tmp_path, "world", "0.1.0", 2)
    tokens = create_access(client)
    repos = {name: Client(headers=bearer(tokens[name])).get(f"/clusters/{name}/repo", headers=COSMOS)
             for name in ("prod", "edge")}
    assert {repo.status_code for repo in repos.values()} == {200} and repos["prod"].content != repos["edge"].content
    audit_before = client.get("/api/v1/audit/").json()["results"]
    backup = manage("backup", "--to", target, "--json",
                    env=registry_env(data, DATABASE_URL=postgres_database, **target_settings))
    assert json.loads(backup.stdout)["audit_events"] == len(audit_before)

    # The data directory (its blobs with it) and the database are gone: one command brings the registry back.
    shutil.rmtree(data)
    env = registry_env(data, DATABASE_URL=empty_database, PUBLIC_BASE_URL=public, DISK_FREE_THRESHOLD_BYTES="1",
                       **target_settings)
    restored = manage("restore", "--from", target, env=env, check=False)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("Created the database schema.\nRestored snapshot "), restored.stdout

    with open(tmp_path / "registry.log", "w") as log:
        run = subprocess.Popen([sys.executable, "manage.py", "runregistry", "--bind", public.removeprefix("http://"),
                                "--web-workers", "1", "--worker-concurrency", "1"],
                               cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: get_json(f"{public}/health/ready")[0] == 200, timeout=90, what="the restored registry")

        # Each cluster's saved token reads its repository, byte for byte as before; the revoked one stays refused.
        for name, before in repos.items():
            assert fetch(f"{public}/clusters/{name}/repo", tokens[name], headers=COSMOS) == (200, before.content)
        status, body = fetch(f"{public}/api/v1/packages/", tokens["old"])
        assert status == 401 and json.loads(body)["code"] == "invalid_token"

        # The audit log holds the old entries, then the restore.
        status, body = fetch(f"{public}/api/v1/audit/", operator_token)
        events = json.loads(body)["results"]
        assert events[1:] == audit_before
        assert (events[0]["action"], events[0]["actor"], events[0]["target"]) == ("restore", "user:manage.py", target)

        # The write token uploads, and the restored registry's worker publishes it.
        built = make_bundle(tmp_path / "new", name="hello", version="2.0.0")
        status, body = fetch(f"{public}/api/v1/bundles/", tokens["ci"], data=built.path.read_bytes(),
                             headers={"Content-Type": BUNDLE_MEDIA_TYPE})
        assert status == 202, body
        job_url = f"{public}/api/v1/jobs/{json.loads(body)['id']}/"
        job = wait_until(lambda: (job := json.loads(fetch(job_url, tokens["ci"])[1]))["state"] in (
            "succeeded", "failed") and job, timeout=90, what="the worker to ingest the upload", interval=0.5)
        assert job["state"] == "succeeded", job
        status, body = fetch(f"{public}/clusters/prod/repo", tokens["prod"], headers=COSMOS)
        assert ("hello", "2.0.0") in {(package["name"], package["version"]) for package in json.loads(body)["packages"]}

        # The superuser logs into the admin with the password it had, and finds the restore in the audit log.
        browser.get(public + reverse("admin:index"))
        wait_for(browser, "#id_username").send_keys("root")
        browser.find_element(By.ID, "id_password").send_keys(ROOT_PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
        assert "Storage status" in wait_for(browser, "#registry-operations").text
        browser.get(public + reverse("admin:access_auditevent_changelist") + "?action__exact=restore")
        assert "user:manage.py" in wait_for(browser, "#result_list").text
    finally:
        stop(run)


def test_a_restore_into_a_fresh_sqlite_data_directory_creates_the_schema(client, tmp_path):
    """The embedded deployment: no DATABASE_URL, the database is a file in REGISTRY_DATA_DIR."""
    publish(client, tmp_path, "hello", "1.0.0", 1)
    create_access(client)
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target), stdout=StringIO())
    env = registry_env(tmp_path / "fresh")

    report = json.loads(manage("restore", "--from", str(target), "--json", env=env).stdout)
    assert report["schema_created"] is True and (report["versions"], report["tokens"], report["users"]) == (1, 5, 2)
    listed = json.loads(manage("tokens", "list", "--json", env=env).stdout)
    assert sorted(token["key_id"] for token in listed) == sorted(ApiToken.objects.values_list("key_id", flat=True))


def test_a_restore_refuses_a_database_whose_schema_is_behind_the_code(tmp_path):
    target = tmp_path / "backup"
    call_command("backup", "--to", str(target), stdout=StringIO())
    env = registry_env(tmp_path / "old")
    manage("migrate", "access", "0001", "--no-input", env=env)

    refused = manage("restore", "--from", str(target), env=env, check=False)
    assert refused.returncode == 1
    assert "The database's schema is older than this registry's code; run `manage.py migrate` first" in (
        refused.stderr)
