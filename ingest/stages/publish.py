"""Stage 5: the version becomes visible, with all its blobs and its images' index, in one database transaction.

Until this commit nothing of the bundle is in the catalogue. The package row is locked, so two
uploads of one name and version end in exactly one version: the second sees the first and is
an idempotent success (same content), a conflict, or a replacement (when it asked for one).
A job of a cluster's token publishes only what the cluster may see, by its rules of this moment.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from access.principals import check_may_publish
from dcos_bundle.errors import ErrorCode, RegistryError
from ingest.models import IngestJob, JobBlob
from ingest.progress import JobCancelled
from packages_app.image_index import index_images, manifest_uses
from packages_app.models import Package, PackageVersion, VersionBlob

from .validate import BundlePlan


def existing_outcome(job: IngestJob, existing: PackageVersion | None, plan: BundlePlan) -> PackageVersion | None:
    """What an already published version of the same name and version means for this job.

    Returns the version when the job is an identical upload (nothing to do), None when the job
    may publish, and raises ``version_conflict`` otherwise.
    """
    if existing is None:
        return None
    if existing.content_digest == plan.content_digest:
        return existing
    if job.replace:
        return None
    raise RegistryError(
        ErrorCode.VERSION_CONFLICT,
        f"Version {plan.version} of package {plan.name} is already published with different content. "
        "Upload with replace to swap it.",
        package=plan.name, version=plan.version, published_content=existing.content_digest,
        uploaded_content=plan.content_digest,
    )


def find_version(name: str, version: str) -> PackageVersion | None:
    return PackageVersion.objects.filter(package__name=name, version=version).first()


def publish(job: IngestJob, plan: BundlePlan) -> PackageVersion:
    metadata = plan.metadata
    with transaction.atomic():
        if not IngestJob.objects.select_for_update().filter(pk=job.pk, state=IngestJob.State.RUNNING).exists():
            raise JobCancelled(job.pk)
        check_may_publish(job.cluster, plan.name, plan.version)
        package, _ = Package.objects.get_or_create(name=plan.name)
        package = Package.objects.select_for_update().get(pk=package.pk)
        existing = package.versions.filter(version=plan.version).first()
        identical = existing_outcome(job, existing, plan)
        if identical is not None:
            version, outcome = identical, IngestJob.Outcome.UNCHANGED
        else:
            outcome = IngestJob.Outcome.PUBLISHED if existing is None else IngestJob.Outcome.REPLACED
            if existing is not None:
                # Replaced: its images leave the index with it; its blobs stay until GC finds nothing else uses them.
                existing.delete()
            package.last_release_version += 1
            package.save(update_fields=["last_release_version", "updated_at"])
            version = PackageVersion.objects.create(
                package=package,
                version=plan.version,
                packaging_version=metadata["packagingVersion"],
                release_version=package.last_release_version,
                description=metadata.get("description", ""),
                tags=metadata.get("tags", []),
                framework=metadata.get("framework", False),
                min_dcos_release_version=metadata.get("minDcosReleaseVersion", ""),
                metadata=metadata,
                bundle_digest=job.bundle_digest,
                content_digest=plan.content_digest,
            )
            uses = {(claim.digest, claim.role, claim.name) for claim in JobBlob.objects.filter(job=job)}
            VersionBlob.objects.bulk_create(
                [VersionBlob(version=version, blob_id=digest, role=role, name=name) for digest, role, name in uses]
            )
            index_images(manifest_uses(version.blob_links.all()))
        IngestJob.objects.filter(pk=job.pk).update(
            state=IngestJob.State.SUCCEEDED, outcome=outcome, package_version=version, finished_at=timezone.now()
        )
    return version
