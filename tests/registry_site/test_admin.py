"""Every model is registered in the admin and its pages open for staff."""

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from access.models import AuditEvent, Cluster
from blobs.models import Blob, StorageBackend
from blobs.store import ensure_backend_lock
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from dcos_bundle.sizes import human_size
from ingest.models import IngestJob
from operations.gc import collect
from operations.models import OperationRun
from packages_app.models import Package, PackageVersion, VersionBlob
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.factories import IngestJobFactory, OperationRunFactory, StorageBackendFactory, VersionBlobFactory

MODELS = [Package, PackageVersion, VersionBlob, Blob, IngestJob, StorageBackend, OperationRun]


@pytest.fixture
def catalogue(db):
    link = VersionBlobFactory(version__package__name="hello-world", version__version="2.1.0", name="hello.tgz")
    version = link.version
    job = IngestJobFactory(bundle_name="hello-world-2.1.0.dcos", package_version=version)
    backend = StorageBackendFactory()
    run = OperationRunFactory(kind=OperationRun.Kind.GC, succeeded=True, summary={"blobs": 0})
    return {Package: version.package, PackageVersion: version, VersionBlob: link,
            Blob: link.blob, IngestJob: job, StorageBackend: backend, OperationRun: run}


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_changelist_and_change_pages_open(admin_client, catalogue, model):
    assert admin.site.is_registered(model)
    meta = model._meta
    changelist = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert changelist.status_code == 200
    change = admin_client.get(
        reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[catalogue[model].pk])
    )
    assert change.status_code == 200


def test_blob_list_shows_reference_counts(admin_client, catalogue):
    page = admin_client.get(reverse("admin:blobs_blob_changelist")).content.decode()
    assert '<td class="field-reference_count">1</td>' in page


def test_storage_lock_cannot_be_added_or_deleted_by_hand(admin_client, catalogue):
    backend = catalogue[StorageBackend]
    assert admin_client.get(reverse("admin:blobs_storagebackend_add")).status_code == 403
    assert admin_client.post(reverse("admin:blobs_storagebackend_delete", args=[backend.pk])).status_code == 403
    assert StorageBackend.objects.filter(pk=backend.pk).exists()


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("admin:ingest_ingestjob_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def cluster_form(name: str, rules: list[tuple], initial: int = 0, **fields) -> dict:
    """The admin's cluster form with its rules inline: (package, versions[, rule id[, delete]]) each."""
    data = {"name": name, "description": "", "dcos_version": "", "sees_all_packages": "on", **fields,
            "rules-TOTAL_FORMS": str(len(rules)), "rules-INITIAL_FORMS": str(initial),
            "rules-MIN_NUM_FORMS": "0", "rules-MAX_NUM_FORMS": "1000"}
    for index, (package, versions, *existing) in enumerate(rules):
        data.update({f"rules-{index}-package_name": package, f"rules-{index}-versions": versions})
        if existing:
            data[f"rules-{index}-id"] = str(existing[0])
            if existing[1:]:
                data[f"rules-{index}-DELETE"] = "on"
    return data


def test_clusters_are_saved_with_their_rules_and_logged_by_the_same_service_as_the_api(admin_client):
    added = admin_client.post(reverse("admin:access_cluster_add"),
                              cluster_form("edge", [("kafka", "2.*"), ("nginx", "")]), follow=True)
    assert added.status_code == 200 and "was added successfully" in added.content.decode()
    cluster = Cluster.objects.get(name="edge")
    kafka, nginx = cluster.rules.order_by("package_name")
    changed = admin_client.post(
        reverse("admin:access_cluster_change", args=[cluster.pk]),
        cluster_form("edge", [("kafka", "3.*", kafka.pk), ("nginx", "", nginx.pk, "delete"), ("redis", "")],
                     initial=2, dcos_version="2.2"),
        follow=True)
    assert changed.status_code == 200 and "was changed successfully" in changed.content.decode()
    assert dict(cluster.rules.values_list("package_name", "versions")) == {"kafka": "3.*", "redis": ""}
    admin_client.post(reverse("admin:access_cluster_delete", args=[cluster.pk]), {"post": "yes"})
    assert not Cluster.objects.exists()

    events = AuditEvent.objects.order_by("id").values_list("actor", "action", "target", "remote_addr", "details")
    described = {"description": "", "sees_all_packages": True}
    assert list(events) == [
        ("user:admin", "cluster_create", "edge", "127.0.0.1",
         {**described, "dcos_version": "", "rules": {"kafka": "2.*", "nginx": ""}}),
        ("user:admin", "cluster_change", "edge", "127.0.0.1",
         {**described, "dcos_version": "2.2", "rules": {"kafka": "3.*", "redis": ""}}),
        ("user:admin", "cluster_remove", "edge", "127.0.0.1", {}),
    ]


# Operators' pages and actions, on real bundles through the upload API.

def upload(client, built) -> IngestJob:
    response = client.post(f"/api/v1/bundles/?{urlencode({'file_name': built.path.name})}",
                           data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202, response.content
    return IngestJob.objects.get(pk=response.json()["id"])


def bundle(tmp_path, version="1.0.0", seed=1, shared_asset=True):
    # The asset is the same file in every version (unless told otherwise): one blob several versions use.
    assets = [AssetSpec("payload", "payload.tgz", 3000, 7 if shared_asset else seed)]
    images = [ImageSpec("server", f"example/hello:{version}", [4000], seed=seed)]
    return make_bundle(tmp_path / version, version=version, assets=assets, images=images)


def run_action(client, model_admin_url: str, action: str, pks, **extra):
    return client.post(reverse(model_admin_url), {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks],
                                                  **extra}, follow=True)


def inline_cells(page: str, field: str) -> list[str]:
    return re.findall(rf'<td class="field-{field}">\s*<p>([^<]*)</p>', page)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def failing_once(registry, monkeypatch):
    """The blob store's first write fails as a full or lost disk would; later writes work."""
    put, calls = registry.put, []

    def flaky_put(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return put(*args, **kwargs)

    monkeypatch.setattr(registry, "put", flaky_put)
    return calls


def test_job_pages_show_state_progress_and_the_published_version(admin_client, registry, tmp_path):
    job = upload(admin_client, bundle(tmp_path))
    assert job.state == "succeeded"
    listing = admin_client.get(reverse("admin:ingest_ingestjob_changelist")).content.decode()
    version_url = reverse("admin:packages_app_packageversion_change", args=[job.package_version_id])
    assert f'<a href="{version_url}">hello 1.0.0</a>' in listing
    # Publish counts no bytes: its progress is its percent alone.
    assert "Publish (100.0%)" in listing
    # Short ids keep the list within 1280 px; the whole id is the cell's title.
    assert f'<code title="{job.pk}">{str(job.pk)[:8]}</code>' in listing
    detail = admin_client.get(reverse("admin:ingest_ingestjob_change", args=[job.pk])).content.decode()
    stage = job.stages.get(stage="receive")
    assert stage.bytes_total == job.bundle_size > 0
    assert inline_cells(detail, "stage") == ["Receive", "Inspect", "Validate", "Verify Images", "Store", "Publish"]
    assert re.search(rf'<td class="field-done">\s*<p><span title="{stage.bytes_done:,} bytes">'
                     rf'{re.escape(human_size(stage.bytes_done))}</span>', detail)
    assert inline_cells(detail, "percent") == ["100.0"] * 6
    assert str(stage) == "Receive"
    assert re.findall(r'<tr data-stage="(\w+)"', detail) == [value for value, _ in IngestJob.Stage.choices]
    assert f'data-job-url="/api/v1/jobs/{job.pk}/"' in detail
    assert f'title="{job.bundle_size:,} bytes"' in detail
    version_page = admin_client.get(version_url).content.decode()
    assert reverse("admin:ingest_ingestjob_change", args=[job.pk]) in version_page


def test_a_job_failed_by_the_registry_keeps_its_bundle_and_a_retry_publishes_it(
        admin_client, registry, tmp_path, settings, failing_once):
    failed = upload(admin_client, bundle(tmp_path))
    assert (failed.state, failed.error_code) == ("failed", "internal_error")
    staged = Path(failed.staging_path)
    assert staged.is_file()
    page = admin_client.get(reverse("admin:ingest_ingestjob_change", args=[failed.pk])).content.decode()
    assert "No space left on device" in page

    response = run_action(admin_client, "admin:ingest_ingestjob_changelist", "retry", [failed.pk])
    failed.refresh_from_db()
    retry = IngestJob.objects.get(pk=failed.error_details["retried_as"])
    assert messages_of(response) == [f"Queued again as new jobs: 1 job(s): {retry.pk}."]
    assert (retry.state, retry.package_version.version) == ("succeeded", "1.0.0")
    assert (retry.bundle_digest, retry.bundle_name) == (failed.bundle_digest, failed.bundle_name)
    # The file moved to the new job, which released it when it succeeded.
    assert failed.staging_path == "" and not staged.exists()
    assert [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()] == []

    again = run_action(admin_client, "admin:ingest_ingestjob_changelist", "retry", [failed.pk])
    assert messages_of(again) == [f"Skipped job {failed.pk} ({failed.bundle_name}): Job {failed.pk} was already "
                                  f"retried as job {retry.pk}."]


def test_gc_sweeps_the_kept_bundle_of_a_failed_job_only_after_the_protection_window(
        admin_client, registry, tmp_path, failing_once):
    staged = Path(upload(admin_client, bundle(tmp_path)).staging_path)
    assert collect().staged_files == [] and staged.exists()
    assert collect(protection=timedelta(0)).staged_files == [str(staged)] and not staged.exists()


def test_retry_refuses_jobs_that_did_not_fail_or_whose_bundle_is_gone(
        admin_client, registry, tmp_path, settings, failing_once):
    gone = upload(admin_client, bundle(tmp_path, "1.0.0"))
    Path(gone.staging_path).unlink()
    succeeded = upload(admin_client, bundle(tmp_path, "2.0.0", seed=2))
    broken = tmp_path / "broken.dcos"
    broken.write_bytes(b"PK\x03\x04, then cut off")
    bad = IngestJob.objects.get(pk=admin_client.post(
        "/api/v1/bundles/", data=broken.read_bytes(), content_type=BUNDLE_MEDIA_TYPE).json()["id"])
    assert (gone.error_code, succeeded.state, bad.error_code) == ("internal_error", "succeeded", "truncated_zip")
    # A bundle at fault is not kept: a retry could only fail the same way.
    assert not Path(bad.staging_path).exists()

    response = run_action(admin_client, "admin:ingest_ingestjob_changelist", "retry",
                          [gone.pk, succeeded.pk, bad.pk])
    assert sorted(messages_of(response)) == sorted([
        f"Skipped job {gone.pk} ({gone.bundle_name}): The staged bundle of job {gone.pk} is gone (garbage "
        "collection removes it after GC_PROTECTION_SECONDS). Upload the bundle again.",
        f"Skipped job {succeeded.pk} ({succeeded.bundle_name}): Job {succeeded.pk} is succeeded; only failed jobs "
        "can be retried.",
        f"Skipped job {bad.pk} (no name): Job {bad.pk} failed because of its bundle (truncated_zip); its staged copy "
        "was removed. Fix the bundle and upload it again.",
    ])
    assert IngestJob.objects.count() == 3


def test_cancel_action_cancels_queued_jobs_and_skips_finished_ones(admin_client, registry, tmp_path, settings):
    done = upload(admin_client, bundle(tmp_path))
    staged = settings.STAGING_DIR / "bundles" / "queued.dcos"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"waiting for a worker")
    queued = IngestJobFactory(bundle_name="queued.dcos", bundle_size=20, staging_path=str(staged))

    response = run_action(admin_client, "admin:ingest_ingestjob_changelist", "cancel", [queued.pk, done.pk])
    assert sorted(messages_of(response)) == sorted([
        f"Cancelled 1 job(s): {queued.pk}.",
        f"Skipped job {done.pk} ({done.bundle_name}): Job {done.pk} has already succeeded; there is nothing to "
        "cancel.",
    ])
    queued.refresh_from_db()
    assert queued.state == "cancelled" and not staged.exists()
    assert IngestJob.objects.get(pk=done.pk).state == "succeeded"


def test_remove_confirmation_names_the_garbage_and_the_shared_blob_that_stays(admin_client, registry, tmp_path):
    first = upload(admin_client, bundle(tmp_path, "1.0.0", seed=1)).package_version
    second = upload(admin_client, bundle(tmp_path, "2.0.0", seed=2)).package_version
    shared = first.blob_links.get(role="asset").blob
    own = list(Blob.objects.filter(references__version=first).exclude(digest=shared.digest).distinct())
    assert len(own) == 3 and shared.references.count() == 2  # manifest, config, layer; the asset twice

    confirm = run_action(admin_client, "admin:packages_app_packageversion_changelist", "remove", [first.pk])
    page = confirm.content.decode()
    garbage_table = page.split('id="garbage-blobs"')[1].split("</table>")[0]
    kept_table = page.split('id="kept-blobs"')[1].split("</table>")[0]
    assert sorted(re.findall(r"sha256:[0-9a-f]{64}", garbage_table)) == sorted(blob.digest for blob in own)
    for blob in own:
        role = first.blob_links.get(blob=blob).role
        assert f"<td><code>{blob.digest}</code></td><td>{blob.size}</td><td>{role}</td>" in garbage_table
    assert f'<strong id="garbage-bytes">{sum(blob.size for blob in own)}</strong>' in page
    assert re.findall(r"sha256:[0-9a-f]{64}", kept_table) == [shared.digest]
    assert "hello 2.0.0" in kept_table
    assert PackageVersion.objects.count() == 2  # nothing happens before the confirmation

    done = run_action(admin_client, "admin:packages_app_packageversion_changelist", "remove", [first.pk],
                      confirmed="yes")
    assert messages_of(done) == ["Removed 1 version(s): hello 1.0.0. 3 blob(s) are garbage now; GC deletes them "
                                 "after its protection window."]
    assert list(PackageVersion.objects.all()) == [second]
    # Removal leaves the blobs to GC.
    assert all(registry.exists(blob.digest) for blob in own) and Blob.objects.count() == 7
    assert admin_client.get("/api/v1/packages/hello/versions/1.0.0/").status_code == 404


def change_form_data(page, **changes) -> dict:
    """What the admin's change form posts back as it is on ``page`` (inlines included), with ``changes``."""
    data = {name: value for name, value in page.context["adminform"].form.initial.items() if value is not None}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{name}": value for name, value in formset.management_form.initial.items()})
        for form in formset.forms:
            data.update({form.add_prefix(name): form[name].value() for name in form.fields})
    return {**data, **changes}


def test_an_operator_pins_the_default_version_in_the_package_page(admin_client, registry, tmp_path):
    upload(admin_client, bundle(tmp_path, "2.0", seed=1))
    package = upload(admin_client, bundle(tmp_path, "16.2", seed=2)).package_version.package
    url = reverse("admin:packages_app_package_change", args=[package.pk])
    page = admin_client.get(url)
    assert "The highest version (16.2)" in page.content.decode()

    saved = admin_client.post(url, change_form_data(page, pinned_version="2.0"))
    assert saved.status_code == 302
    assert admin_client.get("/api/v1/packages/hello/").json()["default_version"] == "2.0"
    repo = admin_client.get("/repo").json()["packages"]
    assert max(repo, key=lambda entry: entry["releaseVersion"])["version"] == "2.0"
    assert "<td class=\"field-pinned_version\">2.0</td>" in admin_client.get(
        reverse("admin:packages_app_package_changelist")).content.decode()

    refused = admin_client.post(url, change_form_data(page, pinned_version="9.9"))
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert admin_client.post(url, change_form_data(page, pinned_version="")).status_code == 302
    assert Package.objects.get().pinned_version == ""
    events = AuditEvent.objects.filter(action=AuditEvent.Action.DEFAULT_VERSION).order_by("id")
    assert list(events.values_list("actor", "target", "details")) == [
        ("user:admin", "hello", {"version": "2.0", "previous": None}),
        ("user:admin", "hello", {"version": None, "previous": "2.0"})]


def test_removing_a_package_removes_all_its_versions_and_keeps_its_row(admin_client, registry, tmp_path):
    package = upload(admin_client, bundle(tmp_path, "1.0.0", seed=1)).package_version.package
    upload(admin_client, bundle(tmp_path, "2.0.0", seed=2))
    confirm = run_action(admin_client, "admin:packages_app_package_changelist", "remove", [package.pk])
    page = confirm.content.decode()
    assert "None: no other version uses a blob of these versions." in page
    assert len(re.findall(r"sha256:[0-9a-f]{64}", page.split('id="garbage-blobs"')[1])) == 7
    run_action(admin_client, "admin:packages_app_package_changelist", "remove", [package.pk], confirmed="yes")
    assert PackageVersion.objects.count() == 0 and Package.objects.filter(pk=package.pk).exists()


def test_catalogue_rows_cannot_be_added_changed_or_deleted_by_hand(admin_client, registry, tmp_path):
    job = upload(admin_client, bundle(tmp_path))
    blob = Blob.objects.first()
    for name in ("blobs_blob", "ingest_ingestjob", "operations_operationrun", "packages_app_package",
                 "packages_app_packageversion", "packages_app_versionblob"):
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403, name
    assert admin_client.post(reverse("admin:blobs_blob_change", args=[blob.pk]), {"size": 1}).status_code == 403
    assert admin_client.post(reverse("admin:blobs_blob_delete", args=[blob.pk])).status_code == 403
    assert admin_client.post(reverse("admin:ingest_ingestjob_delete", args=[job.pk])).status_code == 403
    version = job.package_version
    assert admin_client.post(reverse("admin:packages_app_packageversion_delete", args=[version.pk])).status_code == 403
    assert Blob.objects.filter(pk=blob.pk, size=blob.size).exists() and PackageVersion.objects.exists()


def test_blob_pages_show_references_sorted_and_the_versions_using_them(admin_client, registry, tmp_path):
    upload(admin_client, bundle(tmp_path, "1.0.0", seed=1))
    second = upload(admin_client, bundle(tmp_path, "2.0.0", seed=2)).package_version
    shared = second.blob_links.get(role="asset").blob
    # Column 3 (no action checkbox: blobs have no actions) is the reference count; "-" sorts it descending.
    by_references = admin_client.get(reverse("admin:blobs_blob_changelist") + "?o=-3").content.decode()
    counts = re.findall(r'<td class="field-reference_count">(\d+)</td>', by_references)
    assert counts == ["2"] + ["1"] * 6
    detail = admin_client.get(reverse("admin:blobs_blob_change", args=[shared.pk])).content.decode()
    assert f'<span title="{shared.size:,} bytes">{human_size(shared.size)}</span>' in detail
    assert shared.media_type in detail
    for version in PackageVersion.objects.all():
        url = reverse("admin:packages_app_packageversion_change", args=[version.pk])
        assert f'<a href="{url}">{version}</a> (asset https://downloads.example.invalid/payload.tgz)' in detail


def test_storage_status_shows_the_lock_usage_free_disk_and_last_runs(admin_client, registry, tmp_path, settings):
    upload(admin_client, bundle(tmp_path))
    ensure_backend_lock()
    collect()
    url = reverse("admin:blobs_storage_status")
    assert url in admin_client.get(reverse("admin:index")).content.decode()
    assert url in admin_client.get(reverse("admin:blobs_storagebackend_changelist")).content.decode()

    page = admin_client.get(url).content.decode()
    used = sum(Blob.objects.values_list("size", flat=True))
    assert f'<td id="used-bytes">{used} ' in page and "in 4 blobs" in page
    assert registry.identity in page and '<td id="lock-matches">yes</td>' in page
    assert re.search(r'<th scope="row">data_dir</th><td>\d+ bytes', page)
    assert re.search(r'<th scope="row">blob_store</th><td>\d+ bytes', page)
    assert "Disk space is above the threshold everywhere." in page
    gc_run = OperationRun.objects.get(kind="gc")
    assert reverse("admin:operations_operationrun_change", args=[gc_run.pk]) in page
    assert page.count("never") == 2 * (len(OperationRun.Kind) - 1)

    settings.DISK_FREE_THRESHOLD_BYTES = 1 << 62
    StorageBackend.objects.update(identity="s3:elsewhere/registry")
    page = admin_client.get(url).content.decode()
    assert "Low disk: blob_store, data_dir." in page
    assert '<td id="lock-matches">NO: run <code>manage.py migrate_storage</code>' in page
    assert 'id="migrating-to"' not in page
    StorageBackend.objects.update(migrating_to="s3:target/registry")
    page = admin_client.get(url).content.decode()
    assert "to <code>s3:target/registry</code>: new uploads are held off" in page


def test_the_admin_carries_the_registry_name_and_views_the_catalogue(admin_client):
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "<title>Administration | DC/OS Package Registry admin</title>" in index
    assert '<a href="/">View site</a>' in index
    assert "Django administration" not in index


def test_run_outcomes_and_metadata_read_as_tables_and_json(admin_client, catalogue):
    run = OperationRunFactory(kind=OperationRun.Kind.GC, succeeded=True, summary={
        "deleted_blobs": 3, "deleted_bytes": 5 * 1024 * 1024, "held_back": {"blobs": 1, "until": "2026-12-03"}})
    page = admin_client.get(reverse("admin:operations_operationrun_change", args=[run.pk])).content.decode()
    assert '<div class="readonly"><table class="registry-outcome">' in page
    assert '<tr><th scope="row">deleted blobs</th><td>3</td></tr>' in page
    assert '<th scope="row">deleted bytes</th><td><span title="5,242,880 bytes">5.0 MiB</span></td>' in page
    assert '&quot;until&quot;: &quot;2026-12-03&quot;' in page
    status = admin_client.get(reverse("admin:blobs_storage_status")).content.decode()
    assert '<span title="5,242,880 bytes">5.0 MiB</span>' in status and "{'deleted_blobs'" not in status
    version = catalogue[PackageVersion]
    detail = admin_client.get(reverse("admin:packages_app_packageversion_change", args=[version.pk])).content.decode()
    assert '<pre class="registry-json">{\n  &quot;packagingVersion&quot;: &quot;4.0&quot;,' in detail
