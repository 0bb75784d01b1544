"""verify_blobs finds blobs the storage lost or damaged, and names them."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from operations.models import OperationRun
from operations.verify import verify_blobs
from tests.factories import BlobFactory


def stored(store, content: bytes) -> str:
    digest = store.put(io.BytesIO(content)).digest
    BlobFactory(digest=digest, size=len(content))
    return digest


@pytest.mark.django_db
def test_missing_and_corrupt_blobs_are_named(local_storage, capsys):
    healthy = stored(local_storage, b"intact")
    lost = stored(local_storage, b"lost")
    damaged = stored(local_storage, b"damaged")
    local_storage.delete(lost)
    blob_file = local_storage.root / "blobs" / "sha256" / damaged[7:9] / damaged[7:]
    blob_file.write_bytes(b"DAMAGED")

    report = verify_blobs()
    assert report.checked == 3 and not report.healthy
    assert report.missing == [lost]
    assert [item["digest"] for item in report.corrupt] == [damaged]

    with pytest.raises(SystemExit) as exit_status:
        call_command("verify_blobs", "--json")
    assert exit_status.value.code == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["missing"] == [lost] and printed["corrupt"][0]["digest"] == damaged
    assert healthy not in printed["missing"]
    # A run that found harm is recorded, but not as a success.
    assert set(OperationRun.objects.values_list("kind", "succeeded")) == {("verify", False)}
    assert OperationRun.objects.first().summary["missing"] == 1


@pytest.mark.django_db
def test_a_healthy_store_passes_and_samples_check_a_part(local_storage, capsys):
    for number in range(40):
        stored(local_storage, f"blob {number}".encode())
    assert verify_blobs().healthy
    assert OperationRun.objects.get().succeeded is True
    assert 0 < verify_blobs(sample=0.25, seed=1).checked < 40
    call_command("verify_blobs")
    assert "Checked 40 blobs" in capsys.readouterr().out
