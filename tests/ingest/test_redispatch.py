"""Lost tasks are sent again (tasks run in-process): a queued job whose run the broker lost, a running job
whose run, layers or finish were lost. Only jobs that waited INGEST_REDISPATCH_AFTER_SECONDS are, and each
at most once in that time; a copy of the run task that did not start the job leaves it alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dcos_bundle.format import BUNDLE_MEDIA_TYPE, BlobRole
from ingest import pipeline, tasks
from ingest.models import IngestJob
from tests.bundles import ImageSpec, make_bundle
from tests.factories import IngestJobFactory, JobBlobFactory

pytestmark = pytest.mark.usefixtures("registry")
WAIT = 60


@pytest.fixture(autouse=True)
def redispatch_after(settings):
    settings.INGEST_REDISPATCH_AFTER_SECONDS = WAIT


def upload_losing(client, tmp_path, monkeypatch, lost_task: str, attribute: str = "delay") -> IngestJob:
    """Upload a bundle while the broker loses every ``lost_task`` sent; the job as the loss left it."""
    built = make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1", [100_000, 30_000])])
    with monkeypatch.context() as lossy:
        lossy.setattr(getattr(tasks, lost_task), attribute, lambda *args, **kwargs: None)
        response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202
    return IngestJob.objects.get(pk=response.json()["id"])


def waited(job: IngestJob, seconds: float) -> None:
    """The job was last sent (and last beat) ``seconds`` ago."""
    then = timezone.now() - timedelta(seconds=seconds)
    IngestJob.objects.filter(pk=job.pk).update(dispatched_at=then, heartbeat_at=then, created_at=then)


def test_a_queued_job_whose_run_was_lost_is_sent_again_once_it_waited(client, tmp_path, monkeypatch):
    job = upload_losing(client, tmp_path, monkeypatch, "run_ingest")
    assert job.state == "queued" and job.dispatched_at is not None
    waited(job, WAIT - 5)
    assert tasks.redispatch_jobs() == 0

    waited(job, WAIT + 5)
    assert tasks.redispatch_jobs() == 1
    job.refresh_from_db()
    assert job.state == "succeeded", job.error_message
    assert tasks.redispatch_jobs() == 0


def test_a_job_whose_layers_were_lost_gets_them_again(client, tmp_path, monkeypatch):
    job = upload_losing(client, tmp_path, monkeypatch, "verify_layer")
    assert (job.state, job.stage) == ("running", "verify_images")
    assert job.blobs.filter(role=BlobRole.LAYER, stored=False).count() == 2
    waited(job, WAIT + 5)
    assert tasks.redispatch_jobs() == 1
    job.refresh_from_db()
    assert job.state == "succeeded", job.error_message


def test_a_job_whose_finish_was_lost_gets_it_again(client, tmp_path, monkeypatch):
    job = upload_losing(client, tmp_path, monkeypatch, "finish_ingest")
    assert (job.state, job.stage) == ("running", "store")
    # Still beating: its finish may just be waiting in a slow queue.
    waited(job, WAIT + 5)
    IngestJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    assert tasks.redispatch_jobs() == 0

    waited(job, WAIT + 5)
    assert tasks.redispatch_jobs() == 1
    job.refresh_from_db()
    assert job.state == "succeeded", job.error_message


def test_a_run_lost_half_way_goes_on_under_its_own_id_and_no_other_copy_runs_it(client, tmp_path, monkeypatch):
    job = upload_losing(client, tmp_path, monkeypatch, "run_ingest")
    IngestJob.objects.filter(pk=job.pk).update(state="running", stage="inspect", run_task_id="the-lost-run",
                                               started_at=timezone.now())
    # A copy of the run task sent while the job waited: the job started with another one.
    assert pipeline.run(job.pk, task_id="another-copy") == pipeline.NO_TASKS
    job.refresh_from_db()
    assert (job.state, job.stage) == ("running", "inspect") and not job.stages.exists()

    waited(job, WAIT + 5)
    sent = []
    monkeypatch.setattr(tasks.run_ingest, "apply_async",
                        lambda args, task_id=None: sent.append(task_id) or tasks.run_ingest.apply(args, task_id=task_id))
    assert tasks.redispatch_jobs() == 1
    assert sent == ["the-lost-run"]
    job.refresh_from_db()
    assert job.state == "succeeded", job.error_message


@pytest.mark.parametrize("stage, layers, pending", [
    ("receive", {}, pipeline.NextTasks(run=True)),
    ("validate", {}, pipeline.NextTasks(run=True)),
    # Planning the images was cut short before any claim: the run again.
    ("verify_images", {}, pipeline.NextTasks(run=True)),
    ("verify_images", {"a": True, "b": False, "c": False}, pipeline.NextTasks(layers=("b", "c"))),
    # Every layer stored, the hand-over lost: one layer's task makes it.
    ("verify_images", {"a": True}, pipeline.NextTasks(layers=("a",))),
    ("store", {"a": True}, pipeline.NextTasks(finish=True)),
    ("publish", {"a": True}, pipeline.NextTasks(finish=True)),
])
def test_pending_tasks_of_each_stage(stage, layers, pending):
    job = IngestJobFactory(state="running", stage=stage)
    for digest, stored in layers.items():
        JobBlobFactory(job=job, digest=digest, stored=stored, role=BlobRole.LAYER)
    JobBlobFactory(job=job, digest="an asset", stored=False, role=BlobRole.ASSET)
    assert pipeline.pending_tasks(job) == pending


def test_jobs_that_wait_for_nothing_are_left_alone():
    long_ago = timezone.now() - timedelta(hours=1)
    for state in ("succeeded", "failed", "cancelled"):
        IngestJobFactory(state=state, bundle_size=10, dispatched_at=long_ago)
    # Still receiving its bytes: the reaper's (upload_interrupted), not sent anywhere.
    receiving = IngestJobFactory(state="queued", bundle_size=0)
    IngestJob.objects.filter(pk=receiving.pk).update(created_at=long_ago)
    IngestJobFactory(state="running", started_at=long_ago, heartbeat_at=timezone.now(), dispatched_at=long_ago)
    assert list(tasks.lost_jobs()) == []
