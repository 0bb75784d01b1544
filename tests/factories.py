"""Rows the tests need without publishing a bundle: each factory makes a valid row, and a test names only the fields
it is about. Tests that exercise upload and ingest publish real bundles instead (tests/bundles.py)."""

from __future__ import annotations

import hashlib

import factory
from factory.django import DjangoModelFactory

from access.models import Cluster, ClusterPackageRule
from blobs.models import Blob, StorageBackend
from dcos_bundle.format import BlobRole
from ingest.models import IngestJob, JobBlob, UploadSession
from operations.models import OperationRun
from packages_app.models import Package, PackageVersion, VersionBlob


def sha256_of(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


class BlobFactory(DjangoModelFactory):
    class Meta:
        model = Blob

    digest = factory.Sequence(lambda n: sha256_of(f"blob {n}"))
    size = 10
    media_type = "application/octet-stream"


class StorageBackendFactory(DjangoModelFactory):
    class Meta:
        model = StorageBackend

    kind = "local"
    identity = "local:/srv/registry"


class ClusterFactory(DjangoModelFactory):
    class Meta:
        model = Cluster

    name = factory.Sequence(lambda n: f"cluster-{n}")


class ClusterPackageRuleFactory(DjangoModelFactory):
    class Meta:
        model = ClusterPackageRule

    cluster = factory.SubFactory(ClusterFactory)
    package_name = factory.Sequence(lambda n: f"package-{n}")


class PackageFactory(DjangoModelFactory):
    class Meta:
        model = Package

    name = factory.Sequence(lambda n: f"package-{n}")


class PackageVersionFactory(DjangoModelFactory):
    """A published version whose metadata agrees with its indexed fields."""

    class Meta:
        model = PackageVersion

    package = factory.SubFactory(PackageFactory)
    version = factory.Sequence(lambda n: f"1.0.{n}")
    packaging_version = "4.0"
    release_version = factory.Sequence(lambda n: n)
    metadata = factory.LazyAttribute(lambda version: {
        "packagingVersion": version.packaging_version, "name": version.package.name, "version": version.version,
        "maintainer": "registry@example.com", "description": "A package made by the tests.", "tags": [],
    })
    bundle_digest = factory.Sequence(lambda n: sha256_of(f"bundle {n}"))
    content_digest = factory.Sequence(lambda n: sha256_of(f"content {n}"))


class VersionBlobFactory(DjangoModelFactory):
    class Meta:
        model = VersionBlob

    version = factory.SubFactory(PackageVersionFactory)
    blob = factory.SubFactory(BlobFactory)
    role = BlobRole.ASSET
    name = factory.Sequence(lambda n: f"asset-{n}.tgz")


class IngestJobFactory(DjangoModelFactory):
    class Meta:
        model = IngestJob

    bundle_name = factory.Sequence(lambda n: f"bundle-{n}.dcos")


class JobBlobFactory(DjangoModelFactory):
    class Meta:
        model = JobBlob

    job = factory.SubFactory(IngestJobFactory)
    digest = factory.Sequence(lambda n: sha256_of(f"job blob {n}"))
    size = 1
    role = BlobRole.LAYER


class UploadSessionFactory(DjangoModelFactory):
    class Meta:
        model = UploadSession

    size = 1024


class OperationRunFactory(DjangoModelFactory):
    class Meta:
        model = OperationRun

    kind = OperationRun.Kind.GC
