"""Removing a version and pinning a default version write the audit record in the service, whoever calls it."""

from __future__ import annotations

import pytest

from access.audit import Actor
from access.models import AuditEvent
from blobs.models import Blob
from packages_app.catalogue import Garbage, pin_default_version, remove_version, remove_versions, unpin_default_version
from packages_app.models import Package, PackageVersion, VersionBlob

ACTOR = Actor("user:operator", remote_addr="192.0.2.7")
SHARED, OWN_1, OWN_2 = ("sha256:" + digit * 64 for digit in "abc")
SIZES = {SHARED: 10, OWN_1: 20, OWN_2: 40}


def version(package: Package, number: str, digests: list[str]) -> PackageVersion:
    published = PackageVersion.objects.create(
        package=package, version=number, packaging_version="4.0", release_version=int(number[0]),
        metadata={"name": package.name, "version": number}, bundle_digest=SHARED, content_digest=SHARED)
    for digest in digests:
        blob, _ = Blob.objects.get_or_create(digest=digest, defaults={"size": SIZES[digest],
                                                                      "media_type": "application/x-tar"})
        VersionBlob.objects.create(version=published, blob=blob, role="asset", name=digest)
    return published


@pytest.mark.django_db
def test_removing_versions_is_logged_for_the_actor_with_the_garbage_each_left():
    package = Package.objects.create(name="hello", last_release_version=3)
    first = version(package, "1.0.0", [SHARED, OWN_1])
    second = version(package, "2.0.0", [SHARED, OWN_2])
    third = version(package, "3.0.0", [SHARED])
    assert remove_version(first, ACTOR) == Garbage([OWN_1], 20)
    assert remove_versions([second, third], ACTOR) == Garbage(sorted([OWN_2, SHARED]), 50)
    events = AuditEvent.objects.order_by("id").values_list("actor", "action", "target", "remote_addr", "details")
    assert list(events) == [
        (ACTOR.label, "remove_version", "hello 1.0.0", ACTOR.remote_addr, {"garbage_blobs": 1, "garbage_bytes": 20}),
        (ACTOR.label, "remove_version", "hello 2.0.0", ACTOR.remote_addr, {"garbage_blobs": 1, "garbage_bytes": 40}),
        (ACTOR.label, "remove_version", "hello 3.0.0", ACTOR.remote_addr, {"garbage_blobs": 1, "garbage_bytes": 10}),
    ]


@pytest.mark.django_db
def test_pinning_and_unpinning_a_default_version_is_logged_for_the_actor():
    package = Package.objects.create(name="hello", last_release_version=2)
    version(package, "1.0.0", [OWN_1])
    version(package, "2.0.0", [OWN_2])
    pin_default_version("hello", "1.0.0", ACTOR)
    pin_default_version("hello", "2.0.0", ACTOR)
    assert unpin_default_version("hello", ACTOR) == "2.0.0"
    assert unpin_default_version("hello", ACTOR) == ""  # nothing pinned: nothing changed, nothing logged
    events = AuditEvent.objects.order_by("id").values_list("actor", "action", "target", "remote_addr", "details")
    assert list(events) == [
        (ACTOR.label, "default_version", "hello", ACTOR.remote_addr, {"version": "1.0.0", "previous": None}),
        (ACTOR.label, "default_version", "hello", ACTOR.remote_addr, {"version": "2.0.0", "previous": "1.0.0"}),
        (ACTOR.label, "default_version", "hello", ACTOR.remote_addr, {"version": None, "previous": "2.0.0"}),
    ]
