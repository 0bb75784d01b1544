"""Staging in the object store (S3 storage), against the real SeaweedFS: staged objects read by range,
resumable uploads whose parts and tail live in S3 and the database only, and nothing left behind by a
cancel, a refusal, a failure, a success, a retry or GC. Tasks run in-process."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import zipfile
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from blobs.drivers.s3 import MIN_PART_SIZE
from dcos_bundle.errors import RegistryError
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from dcos_bundle.reader import BundleReader
from ingest import services, staging
from ingest.models import IngestJob, UploadSession
from operations.gc import collect
from packages_app.models import PackageVersion
from tests.actors import TEST_ACTOR
from tests.bundles import ImageSpec, make_bundle
from tests.factories import IngestJobFactory
from tests.ingest.test_upload_api import open_upload, put_chunk

pytestmark = pytest.mark.s3
MiB = 1024 * 1024


@pytest.fixture
def s3_registry(transactional_db, s3_storage, settings, tmp_path, eager_tasks):
    """A registry on S3 storage running ingest inline; no STAGING_DIR is used for staging."""
    settings.STAGING_DIR = tmp_path / "staging"
    settings.INGEST_PROGRESS_INTERVAL = 0
    settings.DISK_FREE_THRESHOLD_BYTES = 1
    settings.UPLOADS_PER_MINUTE = 0
    # The smallest parts S3 accepts, so modest bundles already span several.
    s3_storage.part_size = MIN_PART_SIZE
    return s3_storage


def leftovers(store) -> list[str]:
    """Every staged object and every unfinished staged multipart upload."""
    return ([name for name, _, _ in store.iter_staged()]
            + [f"unfinished {name}" for name, _, _ in store.iter_staged_uploads()])


def sha256_of(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def big_bundle(tmp_path):
    """A bundle of more than two 5 MiB parts."""
    built = make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1.0.0", [7 * MiB, 5 * MiB])])
    assert built.path.stat().st_size > 2 * MIN_PART_SIZE
    return built


def test_a_staged_object_reads_by_range_with_seeks_and_end_of_file(s3_registry):
    data = os.urandom(11 * MiB + 12345)
    writer = s3_registry.staged_writer("bundles/ranges.dcos")
    for start in range(0, len(data), 1_000_003):
        writer.write(data[start:start + 1_000_003])
    writer.commit()
    assert leftovers(s3_registry) == ["bundles/ranges.dcos"]

    with s3_registry.open_staged("bundles/ranges.dcos", read_ahead=300_000) as file:
        assert file.seekable()
        assert file.read() == data
        assert file.read() == b"" and file.read(10) == b""
        for offset, length in [(0, 10), (len(data) - 5, 5), (5 * MiB - 3, 700_000), (77, 1), (3, 6 * MiB)]:
            assert file.seek(offset) == offset
            assert file.read(length) == data[offset:offset + length]
        assert file.seek(-10, os.SEEK_END) == len(data) - 10
        assert file.read(100) == data[-10:]
        file.seek(len(data) + 10)
        assert file.read(5) == b""
        file.seek(5)
        file.seek(3, os.SEEK_CUR)
        assert file.tell() == 8 and file.read(4) == data[8:12]
    with pytest.raises(FileNotFoundError):
        s3_registry.open_staged("bundles/none.dcos")


def test_a_staged_writer_commits_an_empty_object_and_aborts_without_a_trace(s3_registry):
    empty = s3_registry.staged_writer("bundles/empty.dcos")
    empty.commit()
    assert s3_registry.staged_size("bundles/empty.dcos") == 0
    s3_registry.delete_staged("bundles/empty.dcos")
    aborted = s3_registry.staged_writer("bundles/aborted.dcos")
    aborted.write(os.urandom(4 * MIN_PART_SIZE + 1))
    aborted.abort()
    assert leftovers(s3_registry) == []


def test_zipfile_reads_a_staged_bundle(s3_registry, tmp_path):
    built = make_bundle(tmp_path / "b")
    location = staging.bundle_location("00000000-0000-0000-0000-00000000000a")
    with open(built.path, "rb") as bundle:
        staging.receive(bundle, location, built.path.stat().st_size)
    with staging.open_bundle(location) as bundle, BundleReader(bundle) as reader:
        assert reader.metadata()["name"] == built.metadata["name"]
    staging.remove(location)
    assert leftovers(s3_registry) == []


def test_a_resumable_upload_in_chunks_of_any_size_is_staged_as_parts_and_ingested(client, s3_registry, tmp_path):
    built = big_bundle(tmp_path)
    data = built.path.read_bytes()
    size = len(data)
    session = open_upload(client, built.path, sha256=sha256_of(built.path))
    record = UploadSession.objects.get(pk=session["id"])
    assert record.staged_upload_id
    # Tiny chunks first (the ZIP start checked across them), then chunks across part boundaries.
    sizes = [1, 2, 1, 100_000, 5 * MiB + 7, 17, 3 * MiB]
    offset = 0
    for chunk_size in sizes:
        response = put_chunk(client, session, data[offset:offset + chunk_size], offset, size)
        assert response.status_code == 200, response.content
        offset += chunk_size
    record.refresh_from_db()
    assert [part["Size"] for part in record.staged_parts] == [MIN_PART_SIZE]
    tail = sorted(name for name, _, _ in s3_registry.iter_staged(f"uploads/{record.pk}/"))
    # The tail objects hold what is not yet in a part, and only those are left.
    assert tail == [f"uploads/{record.pk}/{start:020d}" for start in record.staged_tail] and len(tail) == 3
    assert sum(len(s3_registry.read_staged(name)) for name in tail) == offset - MIN_PART_SIZE
    resent = put_chunk(client, session, data[:10], 0, size)
    assert resent.status_code == 416
    while offset < size:
        chunk = data[offset:offset + 2 * MiB + 1]
        assert put_chunk(client, session, chunk, offset, size).status_code == 200
        offset += len(chunk)
    record.refresh_from_db()
    assert record.staged_tail == [] and sum(part["Size"] for part in record.staged_parts) == size
    assert all(part["Size"] == MIN_PART_SIZE for part in record.staged_parts[:-1])

    response = client.post(session["url"] + "commit/", {}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    assert job["bundle_digest"] == sha256_of(built.path)
    assert PackageVersion.objects.filter(package__name="hello").count() == 1
    assert leftovers(s3_registry) == []


def test_two_webs_sending_the_same_chunk_at_once_take_it_once(s3_registry, tmp_path):
    built = big_bundle(tmp_path)
    data = built.path.read_bytes()
    session = services.open_upload(actor=TEST_ACTOR, size=len(data), expected_digest="", file_name="race.dcos",
                                   replace=False)
    chunk = data[:6 * MiB]
    outcomes = []

    def send():
        try:
            services.append_chunk(session.pk, io.BytesIO(chunk), 0, len(chunk) - 1, len(data))
            outcomes.append("taken")
        except RegistryError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    senders = [threading.Thread(target=send) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    # The session's row lock orders them: the second finds the offset moved on.
    assert sorted(outcomes) == ["range_mismatch", "taken"]
    session.refresh_from_db()
    assert session.offset == len(chunk) and [part["PartNumber"] for part in session.staged_parts] == [1]
    services.append_chunk(session.pk, io.BytesIO(data[len(chunk):]), len(chunk), len(data) - 1, len(data))
    services.cancel_upload(session.pk)
    assert leftovers(s3_registry) == []


def test_a_cancelled_upload_leaves_no_parts_and_no_tail(client, s3_registry, tmp_path):
    built = big_bundle(tmp_path)
    data = built.path.read_bytes()
    session = open_upload(client, built.path)
    assert put_chunk(client, session, data[:6 * MiB], 0, len(data)).status_code == 200
    assert leftovers(s3_registry) != []
    assert client.delete(session["url"]).status_code == 204
    assert leftovers(s3_registry) == []


def test_an_upload_that_is_no_zip_is_refused_at_its_first_chunk_and_leaves_nothing(client, s3_registry, tmp_path):
    built = make_bundle(tmp_path / "b")
    session = open_upload(client, built.path)
    refused = put_chunk(client, session, b"GIF89a", 0, built.path.stat().st_size)
    assert (refused.status_code, refused.json()["code"]) == (400, "not_a_zip")
    assert UploadSession.objects.get(pk=session["id"]).state == "cancelled"
    assert leftovers(s3_registry) == []


def test_monolithic_uploads_leave_nothing_staged_after_success_mismatch_or_failure(client, s3_registry, tmp_path):
    built = big_bundle(tmp_path)
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    mismatch = client.post("/api/v1/bundles/?sha256=" + "0" * 64, data=built.path.read_bytes(),
                           content_type=BUNDLE_MEDIA_TYPE)
    assert (mismatch.status_code, mismatch.json()["code"]) == (400, "upload_digest_mismatch")
    # A ZIP that is no bundle: the job fails because of it, and its staged copy goes.
    not_a_bundle = tmp_path / "plain.zip"
    with zipfile.ZipFile(not_a_bundle, "w") as archive:
        archive.writestr("notes.txt", "no metadata here")
    failed = client.post("/api/v1/bundles/", data=not_a_bundle.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert failed.status_code == 202 and client.get(failed["Location"]).json()["state"] == "failed"
    multipart = client.post("/api/v1/bundles/", {"bundle": open(built.path, "rb")})
    assert multipart.status_code == 202 and client.get(multipart["Location"]).json()["state"] == "succeeded"
    assert leftovers(s3_registry) == []


def test_a_retried_job_takes_over_the_staged_bundle(s3_registry, tmp_path):
    built = make_bundle(tmp_path / "b")
    location = staging.bundle_location("00000000-0000-0000-0000-00000000000b")
    with open(built.path, "rb") as bundle:
        staging.receive(bundle, location, None)
    failed = IngestJobFactory(state=IngestJob.State.FAILED, error_code="internal_error", staging_path=location,
                              bundle_size=built.path.stat().st_size)
    retry = services.retry_job(failed, TEST_ACTOR)
    retry.refresh_from_db()
    assert retry.state == "succeeded", retry.error_message
    assert not staging.exists(location)
    assert leftovers(s3_registry) == []


def test_gc_sweeps_staged_objects_and_unfinished_uploads_nobody_owns(client, s3_registry, tmp_path):
    built = big_bundle(tmp_path)
    data = built.path.read_bytes()
    active = open_upload(client, built.path)
    assert put_chunk(client, active, data[:5 * MiB + 10], 0, len(data)).status_code == 200
    running = IngestJobFactory(state=IngestJob.State.RUNNING, staging_path=staging.bundle_location(
        "00000000-0000-0000-0000-00000000000c"))
    s3_registry.put_staged(staging.area().name(running.staging_path), b"being ingested")
    s3_registry.put_staged("bundles/left-by-a-failed-job.dcos", b"failed")
    s3_registry.put_staged("uploads/00000000-0000-0000-0000-00000000000d/00000000000000000000", b"abandoned tail")
    s3_registry.start_staged_upload("bundles/killed-mid-upload.dcos")
    kept = sorted(leftovers(s3_registry))

    young = collect(dry_run=True)
    assert young.staged_files == []
    # Everything staged is older than the window now; the upload itself is still in use.
    time.sleep(2)
    UploadSession.objects.filter(pk=active["id"]).update(updated_at=timezone.now())
    report = collect(protection=timedelta(seconds=1))
    root = f"s3://{s3_registry.bucket}/{s3_registry.staged_key('')}"
    assert sorted(report.staged_files) == sorted([
        f"{root}bundles/left-by-a-failed-job.dcos",
        f"{root}uploads/00000000-0000-0000-0000-00000000000d/00000000000000000000",
        f"{root}bundles/killed-mid-upload.dcos (unfinished upload)",
    ])
    assert sorted(leftovers(s3_registry)) == sorted(name for name in kept if "failed-job" not in name
                                                    and "0000000d" not in name and "killed" not in name)
    # The open upload goes on where it was.
    assert put_chunk(client, active, data[5 * MiB + 10:], 5 * MiB + 10, len(data)).status_code == 200
