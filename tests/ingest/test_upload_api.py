"""The upload API end to end (tasks run in-process): monolithic, multipart and resumable uploads,
idempotent re-uploads, conflicts and replacement, job listing and cancelling."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from blobs.models import Blob
from dcos_bundle.format import BUNDLE_MEDIA_TYPE, MANIFEST_MEMBER
from ingest import pipeline
from ingest.models import IngestJob, JobBlob, UploadSession
from packages_app.models import PackageVersion, VersionBlob
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.factories import IngestJobFactory
from tests.hostile import read_json, rewrite

pytestmark = pytest.mark.usefixtures("registry")


def upload(client, path, **query):
    suffix = "?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else ""
    return client.post(f"/api/v1/bundles/{suffix}", data=path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)


def job_of(client, response) -> dict:
    assert response.status_code == 202, response.content
    return client.get(response["Location"]).json()


def sha256_file(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_raw_upload_publishes_the_version_with_every_blob(client, tmp_path, registry, settings):
    built = make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1.0.0", [200_000, 3000])])
    response = upload(client, built.path)
    assert response.status_code == 202
    job = job_of(client, response)
    assert job["state"] == "succeeded", job["error"]
    assert (job["package_name"], job["version"]) == ("hello", "1.0.0")
    assert job["result"] == {"package": "hello", "version": "1.0.0", "release_version": 0}
    assert job["outcome"] == "published"
    assert job["bundle_digest"] == sha256_file(built.path)
    assert [stage["stage"] for stage in job["stages"]] == [
        "receive", "inspect", "validate", "verify_images", "store", "publish"]
    assert all(stage["percent"] == 100.0 and stage["finished_at"] for stage in job["stages"])

    version = PackageVersion.objects.get(package__name="hello", version="1.0.0")
    assert version.metadata == built.metadata
    roles = sorted(VersionBlob.objects.filter(version=version).values_list("role", flat=True))
    assert roles == ["asset", "config", "layer", "layer", "manifest"]
    stored = {blob.digest for blob in registry.iter_blobs()}
    assert stored == set(VersionBlob.objects.values_list("blob_id", flat=True)) == set(
        Blob.objects.values_list("digest", flat=True))
    assert JobBlob.objects.count() == 0
    assert list(settings.STAGING_DIR.rglob("*.dcos")) == []


def test_multipart_upload(client, tmp_path):
    built = make_bundle(tmp_path / "b")
    with open(built.path, "rb") as bundle:
        response = client.post("/api/v1/bundles/", data={"bundle": bundle, "replace": "false"})
    job = job_of(client, response)
    assert job["state"] == "succeeded", job["error"]
    assert job["bundle_name"] == "hello-1.0.0.dcos"


def test_replace_takes_the_yes_and_no_words_and_refuses_others(client, tmp_path, settings):
    built = make_bundle(tmp_path / "b")
    refused = upload(client, built.path, replace="maybe")
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_request")
    assert refused.json()["details"] == {"field": "replace", "value": "maybe"}
    with open(built.path, "rb") as bundle:
        refused = client.post("/api/v1/bundles/", data={"bundle": bundle, "replace": "sometimes"})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_request")
    assert IngestJob.objects.count() == 0
    assert [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()] == []

    job = job_of(client, upload(client, built.path, replace="on"))
    assert job["state"] == "succeeded" and job["replace"] is True


def test_bundle_over_the_limit_is_refused_before_it_is_read(client, tmp_path, settings):
    settings.MAX_BUNDLE_BYTES = 1000
    built = make_bundle(tmp_path / "b")
    response = upload(client, built.path)
    assert response.status_code == 413
    assert response.json()["code"] == "bundle_too_large"
    assert IngestJob.objects.count() == 0
    assert list(settings.STAGING_DIR.rglob("*.dcos")) == []


def test_uploads_are_refused_with_507_while_the_disk_is_low(client, tmp_path, settings):
    built = make_bundle(tmp_path / "b")
    settings.DISK_FREE_THRESHOLD_BYTES = 2**62
    refused = upload(client, built.path)
    assert (refused.status_code, refused.json()["code"]) == (507, "insufficient_storage")
    assert "manage.py gc" in refused.json()["message"]
    assert refused.json()["details"]["low"] == ["blob_store", "data_dir"]
    session = client.post("/api/v1/uploads/", {"size": 100}, content_type="application/json")
    assert session.status_code == 507
    assert IngestJob.objects.count() == 0 and UploadSession.objects.count() == 0
    assert [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()] == []
    ready = client.get("/health/ready").json()["checks"]["disk"]
    assert not ready["ok"] and "uploads are refused" in ready["error"]

    settings.DISK_FREE_THRESHOLD_BYTES = 1
    assert job_of(client, upload(client, built.path))["state"] == "succeeded"


def test_a_raw_upload_needs_a_content_length(client):
    response = client.generic("POST", "/api/v1/bundles/", b"", content_type=BUNDLE_MEDIA_TYPE)
    assert (response.status_code, response.json()["code"]) == (411, "length_required")


def test_declared_digest_of_a_raw_upload_is_checked(client, tmp_path):
    built = make_bundle(tmp_path / "b")
    response = upload(client, built.path, sha256="0" * 64)
    assert response.status_code == 400
    assert response.json()["code"] == "upload_digest_mismatch"
    assert IngestJob.objects.count() == 0


def open_upload(client, path, **fields) -> dict:
    response = client.post("/api/v1/uploads/", {"size": path.stat().st_size, "file_name": path.name, **fields},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def put_chunk(client, session, data: bytes, start: int, total: int):
    return client.put(session["url"], data=data, content_type="application/octet-stream",
                      headers={"Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}"})


def test_resumable_upload_in_chunks_with_a_wrong_and_a_resent_chunk(client, tmp_path):
    built = make_bundle(tmp_path / "b")
    data = built.path.read_bytes()
    size = len(data)
    session = open_upload(client, built.path, sha256=sha256_file(built.path))
    first, second = data[: size // 3], data[size // 3: 2 * size // 3]

    assert put_chunk(client, session, first, 0, size).json()["offset"] == len(first)
    skipped = put_chunk(client, session, data[2 * size // 3:], 2 * size // 3, size)
    assert skipped.status_code == 416
    assert skipped.json()["details"]["offset"] == len(first) and skipped["Upload-Offset"] == str(len(first))
    resent = put_chunk(client, session, first, 0, size)
    assert resent.status_code == 416 and resent.json()["details"]["offset"] == len(first)
    assert put_chunk(client, session, second, len(first), size).status_code == 200
    status = client.head(session["url"])
    assert status["Upload-Offset"] == str(2 * size // 3)
    assert status["Range"] == f"bytes=0-{2 * size // 3 - 1}"
    assert put_chunk(client, session, data[2 * size // 3:], 2 * size // 3, size).json()["offset"] == size

    job = job_of(client, client.post(session["url"] + "commit/", {}, content_type="application/json"))
    assert job["state"] == "succeeded", job["error"]
    assert job["bundle_digest"] == sha256_file(built.path)
    assert UploadSession.objects.get().state == "committed"


def test_resumable_commit_with_the_wrong_digest_fails_and_keeps_nothing(client, tmp_path, settings):
    built = make_bundle(tmp_path / "b")
    session = open_upload(client, built.path)
    put_chunk(client, session, built.path.read_bytes(), 0, built.path.stat().st_size)
    job = job_of(client, client.post(session["url"] + "commit/", {"sha256": "sha256:" + "1" * 64},
                                     content_type="application/json"))
    assert job["state"] == "failed"
    assert job["error"]["code"] == "upload_digest_mismatch"
    assert job["error"]["details"]["actual"] == sha256_file(built.path)
    assert PackageVersion.objects.count() == 0
    assert [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()] == []


def test_resumable_errors(client, tmp_path, settings):
    built = make_bundle(tmp_path / "b")
    size = built.path.stat().st_size
    session = open_upload(client, built.path)
    commit = client.post(session["url"] + "commit/", {}, content_type="application/json")
    assert (commit.status_code, commit.json()["code"]) == (409, "upload_incomplete")
    bad_range = client.put(session["url"], data=b"abc", content_type="application/octet-stream",
                           headers={"Content-Range": "bytes=0-2"})
    assert (bad_range.status_code, bad_range.json()["code"]) == (400, "range_invalid")
    wrong_total = put_chunk(client, session, b"abc", 0, size + 1)
    assert (wrong_total.status_code, wrong_total.json()["code"]) == (400, "range_invalid")
    put_chunk(client, session, b"PK\x03", 0, size)
    assert client.delete(session["url"]).status_code == 204
    closed = put_chunk(client, session, b"\x04ef", 3, size)
    assert (closed.status_code, closed.json()["code"]) == (409, "upload_closed")
    assert [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()] == []
    unknown = client.get("/api/v1/uploads/00000000-0000-0000-0000-000000000000/")
    assert unknown.status_code == 404 and unknown.json()["code"] == "upload_unknown"
    invalid = client.post("/api/v1/uploads/", {"size": 0}, content_type="application/json")
    assert (invalid.status_code, invalid.json()["code"]) == (400, "invalid_request")


def test_identical_upload_is_an_idempotent_success_that_says_nothing_changed(client, tmp_path):
    built = make_bundle(tmp_path / "a")
    first = job_of(client, upload(client, built.path))
    assert first["outcome"] == "published"
    published_at = PackageVersion.objects.get().published_at
    again = job_of(client, upload(client, built.path))
    assert again["state"] == "succeeded" and again["result"] == first["result"]
    assert again["outcome"] == "unchanged"
    # Rebuilt elsewhere, later: another file, the same content.
    manifest = read_json(built.path, MANIFEST_MEMBER)
    manifest["builtAt"], manifest["builtBy"] = "2027-01-01T00:00:00Z", {"tool": "elsewhere"}
    rebuilt = rewrite(built.path, tmp_path / "rebuilt.dcos", {MANIFEST_MEMBER: json.dumps(manifest).encode()})
    assert sha256_file(rebuilt) != sha256_file(built.path)
    rebuilt_job = job_of(client, upload(client, rebuilt))
    assert (rebuilt_job["result"], rebuilt_job["outcome"]) == (first["result"], "unchanged")
    assert list(PackageVersion.objects.values_list("release_version", "published_at")) == [(0, published_at)]
    listing = client.get("/api/v1/jobs/?package=hello").json()["results"]
    assert [job["outcome"] for job in listing] == ["unchanged", "unchanged", "published"]


def test_identical_uploads_racing_to_publish_end_in_one_version_and_an_unchanged_job(tmp_path, settings):
    """Both pass validation before either publishes: the second finds the first's version at publish."""
    built = make_bundle(tmp_path / "a")
    jobs = []
    for _ in range(2):
        job = IngestJobFactory(bundle_size=built.path.stat().st_size,
                               staging_path=str(settings.STAGING_DIR / f"{len(jobs)}.dcos"))
        shutil.copyfile(built.path, job.staging_path)
        jobs.append(job)
    for job in jobs:
        handed_over = pipeline.run(job.pk)
        for layer in handed_over.layers:
            handed_over = pipeline.verify_layer(job.pk, layer)
        assert handed_over.finish
    for job in jobs:
        pipeline.finish(job.pk)
    first, second = (IngestJob.objects.get(pk=job.pk) for job in jobs)
    assert (first.state, first.outcome, second.state, second.outcome) == (
        "succeeded", "published", "succeeded", "unchanged")
    assert first.package_version_id == second.package_version_id == PackageVersion.objects.get().pk


def test_same_version_with_other_content_conflicts_unless_replaced(client, tmp_path, registry):
    first = make_bundle(tmp_path / "a")
    other = make_bundle(tmp_path / "b", assets=[AssetSpec("payload", "payload.tgz", 1000, 99)])
    job_of(client, upload(client, first.path))
    old_asset = first.manifest.assets[0].digest

    conflict = job_of(client, upload(client, other.path))
    assert conflict["state"] == "failed"
    assert conflict["error"]["code"] == "version_conflict"
    assert not registry.exists(other.manifest.assets[0].digest)

    replaced = job_of(client, upload(client, other.path, replace="true"))
    assert replaced["state"] == "succeeded", replaced["error"]
    assert (replaced["outcome"], conflict["outcome"]) == ("replaced", None)
    version = PackageVersion.objects.get()
    assert version.release_version == 1
    assert version.blob_links.filter(role="asset").get().blob_id == other.manifest.assets[0].digest
    # The replaced version's asset is garbage now, for GC to collect: nothing references it.
    assert not VersionBlob.objects.filter(blob_id=old_asset).exists()


def test_jobs_are_listed_filtered_and_finished_ones_cannot_be_cancelled(client, tmp_path):
    built = make_bundle(tmp_path / "a")
    done = job_of(client, upload(client, built.path))
    listing = client.get("/api/v1/jobs/?state=succeeded&package=hello").json()
    assert [job["id"] for job in listing["results"]] == [done["id"]]
    assert client.get("/api/v1/jobs/?state=failed").json()["results"] == []
    refused = client.post(done["url"] + "cancel/")
    assert (refused.status_code, refused.json()["code"]) == (409, "job_finished")


def test_a_queued_job_is_cancelled_and_its_staging_removed(client, settings):
    staged = settings.STAGING_DIR / "bundles" / "queued.dcos"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"not looked at")
    job = IngestJobFactory(bundle_name="queued.dcos", staging_path=str(staged))
    response = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert not staged.exists()
