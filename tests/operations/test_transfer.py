"""export, import and inventory: a catalogue carried from one registry to another, only what is missing, every byte
verified on arrival."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import CommandError, call_command

import ingest.carried
import operations.importing
from blobs.models import Blob
from ingest.models import IngestJob
from operations.models import OperationRun
from operations.transfer import CHECKSUMS_NAME, MANIFEST_NAME
from packages_app.models import Package, PackageVersion, VersionBlob
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.dcos_bundle.test_cli import cli, write_token  # noqa: F401  (fixtures)
from tests.operations.test_backup import catalogue_view, empty_registry, run_json
from tests.operations.test_restore_whole_registry import COSMOS, empty_database  # noqa: F401  (a fixture)
from tests.processes import free_port, manage, registry_env

pytestmark = pytest.mark.usefixtures("registry")


def publish(client, tmp_path, name: str, version: str, seed: int, layers: list[int]):
    """A version with one asset and one image; versions of one ``seed`` share the asset and their first layers."""
    built = make_bundle(tmp_path / f"{name}-{version}", name=name, version=version,
                        assets=[AssetSpec("payload", f"{name}.tgz", 3000, seed)],
                        images=[ImageSpec("server", f"example/{name}:{version}", layers, seed)])
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(),
                           content_type="application/vnd.dcos.universe.package+zip;version=v1")
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    return built


def blobs_of(*versions: tuple[str, str]) -> dict[str, int]:
    """digest -> size of every blob the versions use."""
    uses = VersionBlob.objects.none()
    for name, version in versions:
        uses |= VersionBlob.objects.filter(version__package__name=name, version__version=version)
    return dict(uses.values_list("blob_id", "blob__size"))


# The destination's /repo, read by its own code in its own process.
REPO_SCRIPT = ("import sys; from django.test import Client; "
               "sys.stdout.write(Client().get('/repo', headers=%r, HTTP_HOST='127.0.0.1').content.decode())" % COSMOS)


@pytest.mark.parametrize("target_kind", ["directory", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_catalogue_crosses_to_another_registry_and_then_only_what_it_lacks(
        target_kind, request, client, tmp_path, settings, postgres_database, empty_database):
    public = f"http://127.0.0.1:{free_port()}"
    settings.PUBLIC_BASE_URL = public
    destination = registry_env(tmp_path / "destination", DATABASE_URL=empty_database, PUBLIC_BASE_URL=public,
                               DISK_FREE_THRESHOLD_BYTES="1")
    if target_kind == "s3":
        _, bucket, s3 = request.getfixturevalue("s3_bucket")
        settings.S3_ENDPOINT_URL, settings.S3_ACCESS_KEY_ID = s3["endpoint_url"], s3["access_key_id"]
        settings.S3_SECRET_ACCESS_KEY, settings.S3_REGION = s3["secret_access_key"], s3["region"]
        destination.update(S3_ENDPOINT_URL=s3["endpoint_url"], S3_ACCESS_KEY_ID=s3["access_key_id"],
                           S3_SECRET_ACCESS_KEY=s3["secret_access_key"], S3_REGION=s3["region"])
        prefix = f"s3://{bucket}/transfer-{uuid.uuid4().hex[:8]}"
        first, second = f"{prefix}/first", f"{prefix}/second"
    else:
        first, second = str(tmp_path / "first"), str(tmp_path / "second")

    publish(client, tmp_path, "hello", "1.0.0", 1, [4096, 2048])
    publish(client, tmp_path, "world", "0.1.0", 2, [8192])
    publish(client, tmp_path, "other", "1.0.0", 3, [1024])
    selected = blobs_of(("hello", "1.0.0"), ("world", "0.1.0"))

    # The first transfer: two packages, in volumes of 5000 bytes.
    report = run_json("export", "--to", first, "--package", "hello", "--package", "world=0.*",
                      "--volume-size", "5000")
    assert (report["versions"], report["blobs_carried"], report["bytes_carried"]) == (
        2, len(selected), sum(selected.values()))
    assert len(report["volumes"]) == -(-sum(selected.values()) // 5000)

    imported = json.loads(manage("import", "--from", first, "--json", env=destination).stdout)
    assert (sorted(imported["added"]), imported["unchanged"]) == (["hello 1.0.0", "world 0.1.0"], [])
    assert client.delete("/api/v1/packages/other/versions/1.0.0/").status_code == 200
    source_repo = client.get("/repo", headers=COSMOS)
    assert source_repo.status_code == 200
    assert manage("shell", "--no-imports", "-c", REPO_SCRIPT, env=destination).stdout.encode() == source_repo.content

    # The destination says what it holds; two new versions share layers and the asset with the old ones.
    inventory = tmp_path / "inventory.json"
    manage("inventory", "--to", str(inventory), env=destination)
    publish(client, tmp_path, "hello", "2.0.0", 1, [4096, 2048, 512])
    publish(client, tmp_path, "world", "0.2.0", 2, [8192, 1024])
    new = {digest: size for digest, size in blobs_of(("hello", "2.0.0"), ("world", "0.2.0")).items()
           if digest not in selected}
    assert len(new) == 6  # per version: a new layer, config and image manifest

    report = run_json("export", "--to", second, "--since", str(inventory))
    assert (report["versions"], report["blobs_carried"], report["bytes_carried"]) == (4, 6, sum(new.values()))
    imported = json.loads(manage("import", "--from", second, "--json", env=destination).stdout)
    assert sorted(imported["added"]) == ["hello 2.0.0", "world 0.2.0"]
    assert sorted(imported["unchanged"]) == ["hello 1.0.0", "world 0.1.0"]
    assert manage("shell", "--no-imports", "-c", REPO_SCRIPT, env=destination).stdout.encode() == client.get(
        "/repo", headers=COSMOS).content

    # The manifest of the last transfer serves as well as an inventory; a used target is refused.
    if target_kind == "directory":
        again = run_json("export", "--to", str(tmp_path / "third"), "--since", str(tmp_path / "second" / MANIFEST_NAME))
        assert again["bytes_carried"] == 0
    with pytest.raises(CommandError, match="already holds a transfer set"):
        call_command("export", "--to", second)


def transfer_of_two(client, tmp_path) -> tuple[str, dict]:
    publish(client, tmp_path, "hello", "1.0.0", 1, [4096, 2048])
    publish(client, tmp_path, "world", "0.1.0", 2, [8192])
    publish(client, tmp_path, "hello", "2.0.0", 1, [4096, 1024])
    target = tmp_path / "transfer"
    run_json("export", "--to", str(target))
    return str(target), json.loads((target / MANIFEST_NAME).read_bytes())


def test_an_interrupted_import_completes_when_run_again(client, tmp_path, settings, monkeypatch):
    target, _ = transfer_of_two(client, tmp_path)
    before = catalogue_view(client)
    empty_registry(settings, (tmp_path / "destination").as_uri(), keep_access=True)

    # Killed while publishing: one version is out, the other jobs were left running, holding their blobs.
    published = ingest.carried.publish_prepared

    def publish_once_then_die(job, plan, verified):
        if PackageVersion.objects.exists():
            raise KeyboardInterrupt
        return published(job, plan, verified)

    monkeypatch.setattr(ingest.carried, "publish_prepared", publish_once_then_die)
    monkeypatch.setattr(operations.importing, "_abandon", lambda verified, error: None)
    with pytest.raises(KeyboardInterrupt):
        call_command("import", "--from", target)
    assert PackageVersion.objects.count() == 1
    assert IngestJob.objects.filter(state="running").count() == 2
    monkeypatch.undo()

    report = run_json("import", "--from", target)
    assert (len(report["added"]), len(report["unchanged"])) == (2, 1)
    after = catalogue_view(client)
    assert (after["repo"], after["metadata_text"]) == (before["repo"], before["metadata_text"])
    assert run_json("import", "--from", target)["unchanged"] == ["hello 1.0.0", "hello 2.0.0", "world 0.1.0"]


def test_a_tampered_transfer_is_refused_and_changes_nothing(client, tmp_path, settings):
    target, manifest = transfer_of_two(client, tmp_path)
    store = empty_registry(settings, (tmp_path / "destination").as_uri(), keep_access=True)
    publish(client, tmp_path / "destination-uploads", "world", "0.1.0", 2, [8192])
    held = (set(Blob.objects.values_list("digest", flat=True)), {blob.digest for blob in store.iter_blobs()})

    # One byte of a layer only hello 2.0.0 uses is changed: hello 1.0.0 was verified and stored before it is read.
    layers = {(record["package"], record["version"]): {blob["digest"] for blob in record["blobs"]
                                                       if blob["role"] == "layer"} for record in manifest["versions"]}
    [only_new] = layers["hello", "2.0.0"] - layers["hello", "1.0.0"]
    damaged = next(blob for blob in manifest["blobs"] if blob["digest"] == only_new)
    volume = tmp_path / "transfer" / manifest["volumes"][0]["name"]
    data = bytearray(volume.read_bytes())
    data[damaged["offset"] + 100] ^= 0xFF
    volume.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="transfer_damaged"):
        call_command("import", "--from", target)
    assert list(Package.objects.values_list("name", flat=True)) == ["world"]
    assert (set(Blob.objects.values_list("digest", flat=True)), {blob.digest for blob in store.iter_blobs()}) == held
    assert not IngestJob.objects.filter(state="running").exists()

    # A changed manifest is refused before anything is read.
    text = (tmp_path / "transfer" / MANIFEST_NAME).read_text()
    (tmp_path / "transfer" / MANIFEST_NAME).write_text(text.replace("The hello test package.", "Evil."))
    with pytest.raises(CommandError, match=f"{MANIFEST_NAME} in .* hashes to .* but {CHECKSUMS_NAME} says"):
        call_command("import", "--from", target)
    assert list(Package.objects.values_list("name", flat=True)) == ["world"]


def test_export_and_import_over_the_api_answer_a_run_to_poll(client, tmp_path, anonymous_client):
    publish(client, tmp_path, "hello", "1.0.0", 1, [4096])
    publish(client, tmp_path, "world", "0.1.0", 2, [2048])
    target = str(tmp_path / "transfer")

    started = client.post("/api/v1/transfers/exports/", {"to": target, "packages": ["hello=1.*"]},
                          content_type="application/json")
    assert started.status_code == 202 and started["Location"] == started.json()["url"]
    run = client.get(started["Location"]).json()
    assert (run["kind"], run["succeeded"], run["summary"]["versions"]) == ("export", True, 1)

    started = client.post("/api/v1/transfers/imports/", {"from": target}, content_type="application/json")
    run = client.get(started["Location"]).json()
    assert (run["kind"], run["succeeded"], run["summary"]["unchanged"]) == ("import", True, 1)

    # A used target fails the run, which says why; a wrong selection is refused at once; only admins start runs.
    failed = client.get(client.post("/api/v1/transfers/exports/", {"to": target},
                                    content_type="application/json")["Location"]).json()
    assert (failed["succeeded"], failed["summary"]["code"]) == (False, "transfer_exists")
    refused = client.post("/api/v1/transfers/exports/", {"to": target, "cluster": "nowhere"},
                          content_type="application/json")
    assert (refused.status_code, refused.json()["code"]) == (404, "cluster_not_found")
    assert anonymous_client.post("/api/v1/transfers/imports/", {"from": target},
                                 content_type="application/json").status_code == 401


def test_dcos_registry_export_and_import_wait_for_the_run(cli, operator_token, client, tmp_path):
    publish(client, tmp_path, "hello", "1.0.0", 1, [4096])
    target = tmp_path / "transfer"
    status, out, err = cli("export", "--to", target, "--volume-size", "1K", DCOS_REGISTRY_TOKEN=operator_token)
    assert status == 0, err
    assert out.startswith(f"Exported 1 versions to {target}: 4 blobs (") and "carried in 8 volumes" in out
    status, out, err = cli("import", "--from", target, "--json", DCOS_REGISTRY_TOKEN=operator_token)
    assert status == 0 and json.loads(out)["summary"]["unchanged"] == 1
    status, out, err = cli("export", "--to", target, DCOS_REGISTRY_TOKEN=operator_token)
    assert status == 1 and err.startswith("error [transfer_exists]: ")


def test_an_export_that_fails_leaves_no_transfer_set(client, tmp_path, registry):
    publish(client, tmp_path, "hello", "1.0.0", 1, [4096, 2048])
    lost = max(VersionBlob.objects.values_list("blob_id", flat=True))
    registry.delete(lost)
    target = tmp_path / "transfer"
    with pytest.raises(CommandError, match=f"Blob {lost} is missing from the registry's storage"):
        call_command("export", "--to", str(target), "--volume-size", "1000")
    assert not (target / MANIFEST_NAME).exists() and not (target / CHECKSUMS_NAME).exists()
    assert list((target / "data").iterdir()) == []
    run = OperationRun.objects.get(kind="export")
    assert (run.succeeded, run.summary["code"]) == (False, "blob_store_unstable")

    # The target takes the next export.
    client.delete("/api/v1/packages/hello/versions/1.0.0/")
    assert run_json("export", "--to", str(target))["versions"] == 0
