"""validate and the planning of verify_images against documents changed at random: whatever a bundle's
metadata, manifest.json, image index or image manifest holds, they end in a plan or in a RegistryError,
never in another exception (which the pipeline would report as the registry's own ``internal_error``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcos_bundle.errors import RegistryError
from dcos_bundle.format import MANIFEST_MEMBER, METADATA_MEMBER, OCI_INDEX_MEMBER
from dcos_bundle.reader import BundleReader
from ingest.models import IngestJob
from ingest.stages.inspect import inspect_bundle
from ingest.stages.validate import validate_bundle
from ingest.stages.verify_images import plan_images
from tests.bundles import make_bundle
from tests.hostile import read_json, rechain_image, rewrite

# Bounded and derandomised: the same examples on every run, in a few seconds.
EXAMPLES = 150

hostile_strings = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "\0", "\ud800", "a" * 2000, "sha256:" + "0" * 64, "sha256:" + "0" * 193,
                     "sha512:" + "ab" * 64, "application/vnd.oci.image.layer.v1.tar+gzip", "{{> x}}", "1.10"]),
)
hostile_numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
                            st.sampled_from([0, -1, 2**63, 2**63 - 1]))
json_values = st.recursive(
    st.none() | st.booleans() | hostile_numbers | hostile_strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_strings, inner, max_size=3),
    max_leaves=6,
)


def places(document, where=()):
    """Every place in a JSON document, as a path of keys and indexes."""
    yield where
    items = document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    for key, value in items:
        yield from places(value, (*where, key))


def replaced(document, where: tuple, value):
    if not where:
        return value
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    return copy


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("valid"))


@pytest.mark.django_db
def test_any_change_to_a_document_ends_in_a_plan_or_a_registry_error(valid, tmp_path):
    documents = {member: read_json(valid.path, member) for member in (METADATA_MEMBER, MANIFEST_MEMBER, OCI_INDEX_MEMBER)}
    job = IngestJob.objects.create()

    @given(data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def ends_cleanly(data):
        member = data.draw(st.sampled_from([*documents, "image manifest"]))
        value = data.draw(json_values)
        target = tmp_path / "changed.dcos"
        target.unlink(missing_ok=True)
        if member == "image manifest":
            def change(manifest):
                changed = replaced(manifest, data.draw(st.sampled_from(list(places(manifest))[1:])), value)
                manifest.clear()
                manifest.update(changed)

            rechain_image(valid.path, target, manifest_change=change)
        else:
            where = data.draw(st.sampled_from(list(places(documents[member]))))
            rewrite(valid.path, target, {member: json.dumps(replaced(documents[member], where, value)).encode()})
        try:
            with BundleReader(target) as reader:
                plan_images(job, reader, validate_bundle(reader, inspect_bundle(target)))
        except RegistryError:
            pass

    ends_cleanly()
