"""Tokens and their scopes, token-only reads on every face, and the audit log of every change. What each caller
reaches on every operation is tests/access/test_principals.py's."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from access.models import ApiToken, AuditEvent
from access.tokens import create_token, revoke_token
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from packages_app.models import PackageVersion
from tests.actors import TEST_ACTOR
from tests.bundles import AssetSpec, ImageSpec, make_bundle
from tests.factories import ClusterFactory, ClusterPackageRuleFactory, IngestJobFactory

pytestmark = pytest.mark.usefixtures("registry")


def bearer(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def publish(client, tmp_path, name, version, images=()):
    built = make_bundle(tmp_path / f"{name}-{version}", name=name, version=version,
                        assets=[AssetSpec("payload", "p.tgz", 700, hash(version) % 100)], images=list(images))
    response = client.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202, response.content
    assert client.get(response["Location"]).json()["state"] == "succeeded"
    return built


@pytest.fixture
def world(client, tmp_path):
    """Two clusters, a published version, a queued job and one token of every kind."""
    publish(client, tmp_path, "hello", "1.0.0", [ImageSpec("server", "example/hello:1.0.0", [3000])])
    publish(client, tmp_path, "other", "1.0.0", [ImageSpec("server", "example/other:1.0.0", [3000])])
    alpha = ClusterFactory(name="alpha", sees_all_packages=False)
    ClusterPackageRuleFactory(cluster=alpha, package_name="hello")
    beta = ClusterFactory(name="beta")
    job = IngestJobFactory()
    tokens = {
        "read": create_token("reader", "read", actor=TEST_ACTOR)[1],
        "write": create_token("writer", "write", actor=TEST_ACTOR)[1],
        "alpha_read": create_token("alpha reader", "read", alpha, actor=TEST_ACTOR)[1],
        "beta_write": create_token("beta writer", "write", beta, actor=TEST_ACTOR)[1],
    }
    revoked, tokens["revoked"] = create_token("gone", "admin", actor=TEST_ACTOR)
    revoke_token(revoked, TEST_ACTOR)
    return {"job": job, "tokens": tokens, "alpha": alpha}


def test_a_write_token_writes_and_every_change_is_audited(world, tmp_path):
    writer = bearer(world["tokens"]["write"])
    publish(writer, tmp_path, "third", "1.0.0")
    assert writer.delete("/api/v1/packages/third/versions/1.0.0/").status_code == 200
    assert writer.post(f"/api/v1/jobs/{world['job'].pk}/cancel/").status_code == 200
    assert writer.post("/api/v1/clusters/", data={"name": "gamma"}, content_type="application/json").status_code == 201
    assert writer.post("/api/v1/tokens/", data={"name": "x", "scope": "read"},
                       content_type="application/json").status_code == 403
    events = list(AuditEvent.objects.filter(actor__startswith="token:writer").order_by("id").values_list(
        "action", "target", "remote_addr"))
    assert [event[0] for event in events] == ["upload", "remove_version", "job_cancel", "cluster_create"]
    assert events[1][1] == "third 1.0.0" and all(event[2] == "127.0.0.1" for event in events)


def test_tokens_are_shown_once_stored_hashed_and_revoked_at_once(client, world):
    created = client.post("/api/v1/tokens/", data={"name": "ci", "scope": "write", "cluster": "alpha"},
                          content_type="application/json")
    assert created.status_code == 201
    plaintext, key_id = created.json()["token"], created.json()["key_id"]
    assert created.json()["cluster"] == "alpha" and plaintext.startswith(f"dcr_{key_id}_")
    token = ApiToken.objects.get(key_id=key_id)
    assert plaintext.split("_", 2)[2] not in token.secret_hash
    listing = client.get("/api/v1/tokens/").json()["results"]
    assert key_id in [row["key_id"] for row in listing]
    assert all("token" not in row for row in listing) and plaintext not in json.dumps(listing)
    assert bearer(plaintext).get("/api/v1/clusters/").status_code == 200
    assert ApiToken.objects.get(key_id=key_id).last_used_at is not None

    assert client.delete(f"/api/v1/tokens/{key_id}/").json()["revoked_at"]
    refused = bearer(plaintext).post("/api/v1/clusters/", data={"name": "delta"}, content_type="application/json")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert bearer(world["tokens"]["write"][:-1] + "x").get("/api/v1/tokens/").status_code == 401
    assert bearer(tampered).get("/api/v1/packages/").status_code == 401
    unknown = client.post("/api/v1/tokens/", data={"name": "c", "scope": "read", "cluster": "nowhere"},
                          content_type="application/json")
    assert unknown.status_code == 404 and unknown.json()["code"] == "cluster_not_found"
    bad_scope = client.post("/api/v1/tokens/", data={"name": "c", "scope": "root"}, content_type="application/json")
    assert bad_scope.status_code == 400 and "scope" in bad_scope.json()["details"]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"token_create", "token_revoke"} <= actions


def test_basic_credentials_carry_a_token_and_bad_headers_are_refused(world):
    basic = base64.b64encode(f"anyone:{world['tokens']['write']}".encode()).decode()
    assert Client(headers={"Authorization": f"Basic {basic}"}).post(
        "/api/v1/clusters/", data={"name": "basic"}, content_type="application/json").status_code == 201
    for header in ["Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Digest abc", "Bearer"]:
        response = Client(headers={"Authorization": header}).get("/api/v1/packages/")
        assert response.status_code == 401 and response.json()["code"] == "invalid_token", header


def test_token_command_creates_lists_and_revokes(capsys, world):
    call_command("tokens", "create", "--name", "deploy", "--scope", "read", "--cluster", "alpha", "--json")
    created = json.loads(capsys.readouterr().out)
    assert bearer(created["token"]).get("/repo").status_code == 200
    call_command("tokens", "list")
    assert f"{created['key_id']}  read   alpha" in capsys.readouterr().out
    call_command("tokens", "revoke", created["key_id"])
    assert bearer(created["token"]).get("/repo").status_code == 401
    with pytest.raises(CommandError, match="Cluster \\[nowhere\\] not found"):
        call_command("tokens", "create", "--name", "x", "--scope", "read", "--cluster", "nowhere")


def test_expired_tokens_are_refused(world):
    token, plaintext = create_token("short", "write", actor=TEST_ACTOR, expires_at=timezone.now() + timedelta(hours=1))
    assert bearer(plaintext).get("/api/v1/packages/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer(plaintext).get("/api/v1/packages/").status_code == 401


def test_uploads_are_rate_limited_per_token(world, settings, tmp_path):
    settings.UPLOADS_PER_MINUTE = 2
    writer, other = bearer(world["tokens"]["write"]), bearer(world["tokens"]["beta_write"])
    for _ in range(2):
        assert writer.post("/api/v1/uploads/", data={"size": 10}, content_type="application/json").status_code == 201
    refused = writer.post("/api/v1/uploads/", data={"size": 10}, content_type="application/json")
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    built = make_bundle(tmp_path / "limited", name="limited")
    bundle = writer.post("/api/v1/bundles/", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert bundle.status_code == 429
    assert not PackageVersion.objects.filter(package__name="limited").exists()
    # Another token has its own allowance.
    assert other.post("/api/v1/uploads/", data={"size": 10}, content_type="application/json").status_code == 201


def test_token_only_reads(world, settings):
    settings.ANONYMOUS_READS = False
    anonymous = Client()
    for path in ["/repo", "/clusters/alpha/repo", "/api/v1/packages/", "/v2/", "/v2/_catalog",
                 "/v2/example/hello/tags/list"]:
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert "WWW-Authenticate" in response, path
    challenge = anonymous.get("/v2/")["WWW-Authenticate"]
    assert challenge == 'Bearer realm="http://testserver/v2/token",service="testserver"'

    reader = bearer(world["tokens"]["read"])
    assert {p["name"] for p in reader.get("/repo").json()["packages"]} == {"hello", "other"}
    assert reader.get("/v2/_catalog").json()["repositories"] == ["example/hello", "example/other"]

    # A cluster's token sees only its cluster's packages, on every face.
    alpha = bearer(world["tokens"]["alpha_read"])
    packages = alpha.get("/repo").json()["packages"]
    assert [p["name"] for p in packages] == ["hello"]
    assert alpha.get("/clusters/beta/repo").status_code == 404
    assert [p["name"] for p in alpha.get("/api/v1/packages/").json()["results"]] == ["hello"]
    assert alpha.get("/api/v1/packages/other/").status_code == 404
    assert alpha.get("/v2/_catalog").json()["repositories"] == ["example/hello"]
    assert alpha.get("/v2/example/other/tags/list").status_code == 404
    assert alpha.get("/v2/example/hello/manifests/1.0.0").status_code == 200
    full = reader.get("/repo").json()["packages"]
    other_asset = next(p for p in full if p["name"] == "other")["resource"]["assets"]["uris"]["payload"]
    path = other_asset.removeprefix("http://127.0.0.1:8000")
    assert reader.get(path).status_code == 200 and alpha.get(path).status_code == 404
    assert anonymous.get(path).status_code == 401


def test_the_v2_token_endpoint_takes_basic_credentials(world):
    basic = base64.b64encode(f"docker:{world['tokens']['read']}".encode()).decode()
    issued = Client(headers={"Authorization": f"Basic {basic}"}).get("/v2/token?service=testserver")
    assert issued.status_code == 200 and issued.json()["token"] == world["tokens"]["read"]
    assert issued.json()["expires_in"] > 0
    refused = Client().get("/v2/token")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Basic")
    wrong = base64.b64encode(b"docker:dcr_000000000000_" + b"x" * 43).decode()
    assert Client(headers={"Authorization": f"Basic {wrong}"}).get("/v2/token").status_code == 401


def test_the_audit_log_is_exported_from_the_api_the_admin_and_a_command(client, admin_client, world, tmp_path):
    client.post("/api/v1/clusters/", data={"name": "gamma"}, content_type="application/json")
    exported = client.get("/api/v1/audit/?export=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert any(row["action"] == "cluster_create" and row["target"] == "gamma" for row in rows)
    assert client.get("/api/v1/audit/?action=upload").json()["count"] == 2
    assert client.get("/api/v1/audit/?since=yesterday").json()["code"] == "invalid_request"
    assert bearer(world["tokens"]["write"]).get("/api/v1/audit/").status_code == 403

    ids = list(AuditEvent.objects.values_list("pk", flat=True))
    response = admin_client.post("/admin/access/auditevent/", data={
        "action": "export_csv", "_selected_action": [str(pk) for pk in ids]})
    assert response["Content-Type"].startswith("text/csv")
    assert len(b"".join(response.streaming_content).decode().strip().splitlines()) == len(ids) + 1

    target = tmp_path / "audit.csv"
    call_command("export_audit", "--output", str(target))
    assert len(list(csv.DictReader(target.open()))) == len(ids)


def test_tokens_are_created_and_revoked_in_the_admin(admin_client, world):
    response = admin_client.post("/admin/access/apitoken/add/", data={
        "name": "from admin", "scope": "write", "cluster": "", "expires_at_0": "", "expires_at_1": ""}, follow=True)
    message = next(str(m) for m in response.context["messages"] if "not shown again" in str(m))
    plaintext = message.split(": ", 1)[1].split(" ")[0]
    assert bearer(plaintext).post("/api/v1/clusters/", data={"name": "delta"},
                                  content_type="application/json").status_code == 201
    token = ApiToken.objects.get(name="from admin")
    admin_client.post("/admin/access/apitoken/", data={"action": "revoke", "_selected_action": [token.pk]})
    assert bearer(plaintext).get("/api/v1/packages/").status_code == 401
    assert AuditEvent.objects.filter(action="token_revoke", actor="user:admin").exists()
