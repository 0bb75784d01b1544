"""Layers checked while their bundle still arrives (ingest.arrivals), tasks run in-process: handed over as
soon as they are complete, taken by the job only as the inspected bundle names them, awaited when still
being checked, released with whatever ends their upload."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest

from blobs.models import Blob
from dcos_bundle.errors import RegistryError
from ingest import arrivals, pipeline, services, tasks
from ingest.models import ArrivedLayer, IngestJob, JobBlob, UploadSession
from ingest.stages.inspect import inspect_bundle
from operations.gc import collect
from packages_app.models import VersionBlob
from tests.bundles import ImageSpec, make_bundle
from tests.hostile import rechain_image
from tests.ingest.test_upload_api import job_of, open_upload, put_chunk, upload

pytestmark = pytest.mark.usefixtures("registry")
LAYERS = [300_000, 200_000, 100_000]


@pytest.fixture(autouse=True)
def every_layer_arrives(settings):
    settings.INGEST_ARRIVAL_MIN_BYTES = 0


@pytest.fixture
def built(tmp_path):
    return make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1.0.0", LAYERS)])


@pytest.fixture
def layer_checks(monkeypatch):
    """The layers the job checked itself, after the upload."""
    checked = []
    real = pipeline.verify_and_store_layer
    monkeypatch.setattr(pipeline, "verify_and_store_layer",
                        lambda claim, *args: (checked.append(claim.digest), real(claim, *args)))
    return checked


@pytest.fixture
def held_arrivals(monkeypatch):
    """Arrived layers are recorded, but their checks wait until the test runs them."""
    held = []
    monkeypatch.setattr(tasks, "send_arrival", held.append)
    return held


def chunks_of(data: bytes, cuts: list[int]):
    """The bundle cut at ``cuts`` (offsets), as (start, bytes) pairs."""
    edges = [0, *cuts, len(data)]
    return [(start, data[start:end]) for start, end in zip(edges, edges[1:])]


def layer_members(path) -> dict:
    return {member.name: member for member in inspect_bundle(path).members.values()
            if member.name.startswith("images/blobs/") and member.size >= min(LAYERS)}


def test_a_resumable_uploads_layers_are_stored_before_its_commit_and_the_job_only_takes_them(
        client, built, registry, layer_checks):
    data = built.path.read_bytes()
    members = layer_members(built.path)
    # Cut inside a local header, inside a layer, and one byte after a layer's end.
    first = min(members.values(), key=lambda member: member.data_offset)
    cuts = [first.offset + 7, first.data_offset + 1000, first.data_offset + first.compressed_size + 1]
    session = open_upload(client, built.path)
    for start, chunk in chunks_of(data, cuts):
        assert put_chunk(client, session, chunk, start, len(data)).status_code == 200

    arrived = {arrival.member: arrival for arrival in ArrivedLayer.objects.all()}
    assert set(arrived) == set(members)
    for name, arrival in arrived.items():
        digest = "sha256:" + name.rsplit("/", 1)[1]
        assert (arrival.state, arrival.digest, arrival.job, str(arrival.upload_id)) == (
            "stored", digest, None, session["id"])
        assert registry.exists(digest) and Blob.objects.filter(digest=digest).exists()

    job = job_of(client, client.post(session["url"] + "commit/", {}, content_type="application/json"))
    assert job["state"] == "succeeded", job["error"]
    assert layer_checks == []
    assert job["bundle_digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    verify = next(stage for stage in job["stages"] if stage["stage"] == "verify_images")
    assert verify["percent"] == 100.0
    assert set(VersionBlob.objects.filter(role="layer").values_list("blob_id", flat=True)) == {
        arrival.digest for arrival in arrived.values()}
    assert ArrivedLayer.objects.count() == 0 and JobBlob.objects.count() == 0


def test_the_digest_of_a_resumable_upload_is_not_computed_again(client, built, monkeypatch):
    monkeypatch.setattr("ingest.stages.receive.HashingCopier", None)  # a second read would fail here
    data = built.path.read_bytes()
    session = open_upload(client, built.path)
    for start, chunk in chunks_of(data, [1, 5000, len(data) // 2]):
        put_chunk(client, session, chunk, start, len(data))
    job = job_of(client, client.post(session["url"] + "commit/", {}, content_type="application/json"))
    assert job["state"] == "succeeded", job["error"]
    assert job["bundle_digest"] == "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_chunk_that_breaks_off_hands_nothing_over_until_it_is_sent_again(client, built):
    data = built.path.read_bytes()
    session = open_upload(client, built.path)
    # Announces the whole bundle, brings all but its last byte.
    with pytest.raises(RegistryError) as broken:
        services.append_chunk(session["id"], io.BytesIO(data[:-1]), 0, len(data) - 1, len(data))
    assert broken.value.code == "upload_incomplete"
    assert ArrivedLayer.objects.count() == 0
    assert put_chunk(client, session, data, 0, len(data)).status_code == 200
    assert ArrivedLayer.objects.filter(state="stored").count() == len(LAYERS)


def test_a_monolithic_upload_hands_its_layers_over_as_they_arrive(client, built, layer_checks):
    job = job_of(client, upload(client, built.path))
    assert job["state"] == "succeeded", job["error"]
    assert layer_checks == []
    assert VersionBlob.objects.filter(role="layer").count() == len(LAYERS)
    assert ArrivedLayer.objects.count() == 0


def test_a_layer_still_being_checked_is_awaited_and_hands_the_job_over(client, built, held_arrivals, layer_checks):
    response = upload(client, built.path)
    job = IngestJob.objects.get()
    assert (job.state, job.stage) == ("running", "verify_images")
    assert set(ArrivedLayer.objects.values_list("awaited", flat=True)) == {True}
    for arrival_id in held_arrivals:
        tasks.check_arrived_layer(arrival_id)
    assert job_of(client, response)["state"] == "succeeded"
    assert layer_checks == []


def test_a_refused_arrival_the_job_awaits_is_checked_by_the_job_which_says_why(client, tmp_path, held_arrivals,
                                                                              registry):
    valid = make_bundle(tmp_path / "v", images=[ImageSpec("server", "example/hello:1.0.0", [200_000, 100_000])])
    corrupt = rechain_image(valid.path, tmp_path / "corrupt.dcos",
                            layers=lambda layers: [b"\x1f\x8b\x08\x00" + bytes(5000)] + layers[1:])
    response = upload(client, corrupt)
    assert IngestJob.objects.get().stage == "verify_images"
    for arrival_id in held_arrivals:
        tasks.check_arrived_layer(arrival_id)
    job = job_of(client, response)
    assert (job["state"], job["error"]["code"]) == ("failed", "layer_corrupt"), job["error"]
    assert "not valid gzip" in job["error"]["message"]
    assert nothing_left(registry)


def nothing_left(registry) -> bool:
    return not (ArrivedLayer.objects.exists() or JobBlob.objects.exists() or Blob.objects.exists()
                or list(registry.iter_blobs()))


def test_a_layer_the_inspected_bundle_places_elsewhere_is_not_taken(client, built, held_arrivals, layer_checks):
    upload(client, built.path)
    job = IngestJob.objects.get()
    for arrival_id in held_arrivals:
        arrivals.check(arrival_id)
    # What a scanner misled by the local headers would have recorded: not the member the job inspected.
    arrival = ArrivedLayer.objects.filter(job=job).first()
    JobBlob.objects.filter(job=job, role="layer").update(stored=False)
    ArrivedLayer.objects.filter(pk=arrival.pk).update(data_offset=arrival.data_offset + 1, awaited=False)
    adopted, awaited = arrivals.adopt(job, inspect_bundle(job.staging_path))
    others = ArrivedLayer.objects.filter(job=job).exclude(pk=arrival.pk)
    assert adopted == sum(other.size for other in others) and awaited == set()
    assert list(JobBlob.objects.filter(job=job, role="layer", stored=False).values_list("digest", flat=True)) == [arrival.digest]


def test_a_cancelled_upload_and_an_abandoned_one_leave_no_layer_behind(client, built, registry, settings):
    data = built.path.read_bytes()
    for _ in ("cancelled", "abandoned"):
        session = open_upload(client, built.path)
        assert put_chunk(client, session, data[:-1], 0, len(data)).status_code == 200
    cancelled, abandoned = UploadSession.objects.order_by("created_at")
    assert ArrivedLayer.objects.filter(upload=cancelled).exists() and ArrivedLayer.objects.filter(upload=abandoned)
    services.cancel_upload(cancelled.pk)
    assert not ArrivedLayer.objects.filter(upload=cancelled).exists()
    assert Blob.objects.exists()  # the abandoned upload's layers stay while it may go on

    collect(protection=timedelta(0))
    assert UploadSession.objects.get(pk=abandoned.pk).state == "cancelled"
    assert nothing_left(registry)


def test_a_failed_job_releases_the_layers_that_arrived(client, tmp_path, registry):
    valid = make_bundle(tmp_path / "v", images=[ImageSpec("server", "example/hello:1.0.0", [200_000, 100_000])])
    mismatched = rechain_image(valid.path, tmp_path / "mismatch.dcos",
                               config=lambda config: config["rootfs"]["diff_ids"].__setitem__(0, "sha256:" + "0" * 64))
    job = job_of(client, upload(client, mismatched))
    assert (job["state"], job["error"]["code"]) == ("failed", "diff_id_mismatch")
    assert nothing_left(registry)
