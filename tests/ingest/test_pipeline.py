"""The pipeline reads each byte once: the digest the web computed is not computed again, and ``finish`` publishes
the plan ``run`` saved instead of inspecting and validating the bundle a second time."""

from __future__ import annotations

import json
import shutil

import pytest

from dcos_bundle import digests
from ingest import pipeline
from ingest.models import IngestJob
from packages_app.models import PackageVersion
from tests.bundles import ImageSpec, make_bundle
from tests.factories import IngestJobFactory
from tests.streams import sha256_digest

pytestmark = pytest.mark.usefixtures("registry")


def staged_job(built, settings, **fields) -> IngestJob:
    job = IngestJobFactory(bundle_size=built.path.stat().st_size, staging_path=str(settings.STAGING_DIR / "b.dcos"),
                           **fields)
    shutil.copyfile(built.path, job.staging_path)
    return job


def run_to_finish(job: IngestJob) -> None:
    handed_over = pipeline.run(job.pk)
    for layer in handed_over.layers:
        handed_over = pipeline.verify_layer(job.pk, layer)
    assert handed_over.finish


def refuse(what: str):
    def refused(*args, **kwargs):
        raise AssertionError(f"{what} ran again")
    return refused


def test_finish_publishes_the_saved_plan_without_inspecting_or_validating_again(tmp_path, settings, monkeypatch):
    built = make_bundle(tmp_path / "b", images=[ImageSpec("server", "example/hello:1.0.0", [100_000, 2000])])
    job = staged_job(built, settings)
    run_to_finish(job)
    saved = IngestJob.objects.get(pk=job.pk).plan
    assert saved["metadata"] == built.metadata and saved["content_digest"].startswith("sha256:")
    monkeypatch.setattr(pipeline, "inspect_bundle", refuse("inspect"))
    monkeypatch.setattr(pipeline, "validate_bundle", refuse("validate"))
    pipeline.finish(job.pk)
    job.refresh_from_db()
    assert (job.state, job.outcome) == ("succeeded", "published"), job.error_message
    # Kept as text, the metadata is published exactly as uploaded: keys in their order, numbers as written.
    version = PackageVersion.objects.get()
    assert json.dumps(version.metadata) == json.dumps(built.metadata)
    assert version.content_digest == saved["content_digest"]


def test_a_job_started_before_plans_were_saved_validates_its_bundle_at_finish(tmp_path, settings):
    built = make_bundle(tmp_path / "b")
    job = staged_job(built, settings)
    run_to_finish(job)
    IngestJob.objects.filter(pk=job.pk).update(plan=None)
    pipeline.finish(job.pk)
    assert IngestJob.objects.get(pk=job.pk).state == "succeeded"


def test_the_digest_the_web_computed_while_staging_is_not_computed_again(tmp_path, settings, monkeypatch):
    built = make_bundle(tmp_path / "b")
    job = staged_job(built, settings, bundle_digest=sha256_digest(built.path.read_bytes()))
    hashed = []
    original = digests.HashingCopier.chunks

    def counting(self, stream, *args, **kwargs):
        hashed.append(getattr(stream, "name", None))
        return original(self, stream, *args, **kwargs)

    monkeypatch.setattr(digests.HashingCopier, "chunks", counting)
    run_to_finish(job)
    # Blobs are hashed as they are stored; the staged file itself is never read whole to hash it.
    assert job.staging_path not in hashed
    pipeline.finish(job.pk)
    assert IngestJob.objects.get(pk=job.pk).state == "succeeded"
