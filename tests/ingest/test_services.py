"""The ingest services write the audit record themselves: an upload, a cancel or a retry started by any caller
(here: none of the views) is in the log, for the actor the caller names."""

from __future__ import annotations

import pytest

from access.audit import Actor
from access.models import AuditEvent, Cluster
from dcos_bundle.errors import ErrorCode
from ingest import services
from ingest.models import IngestJob
from tests.bundles import make_bundle

pytestmark = pytest.mark.usefixtures("registry")


@pytest.fixture
def actor() -> Actor:
    """A cluster's token, acting from an address."""
    return Actor("token:importer (00112233aabb)", Cluster.objects.create(name="edge"), "2001:db8::5")


def logged() -> list[tuple]:
    return list(AuditEvent.objects.order_by("id").values_list(
        "actor", "action", "target", "cluster", "remote_addr", "details"))


def by(actor: Actor, action: str, target: str, **details) -> tuple:
    return (actor.label, action, target, actor.cluster.name, actor.remote_addr, details)


def test_uploads_are_logged_for_the_actor(tmp_path, actor):
    built = make_bundle(tmp_path / "b")
    size = built.path.stat().st_size
    with open(built.path, "rb") as stream:
        job = services.receive_bundle(stream, declared_size=size, bundle_name="hello.dcos", replace=True, actor=actor)
    session = services.open_upload(size=size, expected_digest="", file_name="again.dcos", replace=False, actor=actor)
    # Both carry who made them, which decides who reaches them.
    assert (job.created_by, job.cluster, session.created_by, session.cluster) == (actor.label, actor.cluster) * 2
    assert logged() == [
        by(actor, "upload", f"job {job.pk}", bundle="hello.dcos", size=size, replace=True),
        by(actor, "upload", f"upload {session.pk}", bundle="again.dcos", size=size, replace=False),
    ]


def test_cancel_and_retry_are_logged_for_the_actor(settings, actor):
    queued = IngestJob.objects.create(bundle_name="queued.dcos")
    services.cancel_job(queued, actor)
    staged = settings.STAGING_DIR / "bundles" / "lost.dcos"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"kept for a retry")
    failed = IngestJob.objects.create(bundle_name="lost.dcos", state=IngestJob.State.FAILED, staging_path=str(staged),
                                      error_code=ErrorCode.WORKER_LOST)
    retry = services.retry_job(failed, actor)
    assert logged() == [
        by(actor, "job_cancel", f"job {queued.pk}", state="cancelled"),
        by(actor, "job_retry", f"job {failed.pk}", result=f"job {retry.pk}"),
    ]


def test_a_refused_cancel_is_not_logged(actor):
    done = IngestJob.objects.create(state=IngestJob.State.SUCCEEDED)
    with pytest.raises(Exception):
        services.cancel_job(done, actor)
    assert logged() == []
