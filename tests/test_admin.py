"""Every model is registered in the admin and its pages open for staff."""

import pytest
from django.contrib import admin
from django.urls import reverse

from ingest.models import Blob, IngestJob, StorageBackend
from packages_app.models import Package, PackageVersion, VersionBlob

MODELS = [Package, PackageVersion, VersionBlob, Blob, IngestJob, StorageBackend]


@pytest.fixture
def catalogue(db):
    package = Package.objects.create(name="hello-world")
    version = PackageVersion.objects.create(
        package=package, version="2.1.0", packaging_version="4.0", release_version=0,
        metadata={"name": "hello-world", "version": "2.1.0", "packagingVersion": "4.0"},
        bundle_digest="sha256:" + "0" * 64,
    )
    blob = Blob.objects.create(digest="sha256:" + "1" * 64, size=10, media_type="application/octet-stream")
    VersionBlob.objects.create(version=version, blob=blob, role=VersionBlob.Role.ASSET, name="hello.tgz")
    job = IngestJob.objects.create(bundle_name="hello-world-2.1.0.dcos", package_version=version)
    backend = StorageBackend.objects.create(kind="local", identity="local:/srv/registry")
    return {Package: package, PackageVersion: version, VersionBlob: version.blob_links.get(),
            Blob: blob, IngestJob: job, StorageBackend: backend}


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
    page = admin_client.get(reverse("admin:ingest_blob_changelist")).content.decode()
    assert '<td class="field-reference_count">1</td>' in page


def test_storage_lock_cannot_be_added_or_deleted_by_hand(admin_client, catalogue):
    backend = catalogue[StorageBackend]
    assert admin_client.get(reverse("admin:ingest_storagebackend_add")).status_code == 403
    assert admin_client.post(reverse("admin:ingest_storagebackend_delete", args=[backend.pk])).status_code == 403
    assert StorageBackend.objects.filter(pk=backend.pk).exists()


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("admin:ingest_ingestjob_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
