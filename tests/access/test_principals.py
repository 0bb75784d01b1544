"""A cluster's token stays inside its cluster, upload sessions belong to their opener (access/principals.py,
docs/access.md): every operation of the OpenAPI schema, asked by every kind of caller about real objects of each
cluster, answers as the rule says; and the attacks that showed the rule was missing fail end to end."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from access.models import ApiToken, AuditEvent, Cluster
from access.tokens import create_token, revoke_token, scope_includes
from blobs.models import Blob
from dcos_bundle.format import BUNDLE_MEDIA_TYPE
from ingest import pipeline, services
from ingest.models import IngestJob, UploadSession
from operations.models import OperationRun
from packages_app.models import PackageVersion
from tests.actors import TEST_ACTOR
from tests.bundles import AssetSpec, make_bundle
from tests.factories import (
    ClusterFactory,
    ClusterPackageRuleFactory,
    IngestJobFactory,
    PackageVersionFactory,
    UploadSessionFactory,
)

pytestmark = pytest.mark.usefixtures("registry")

READ, WRITE, ADMIN = "read", "write", "admin"
JSON = "application/json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


# --- The expectation rules -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    """What an operation asks of its caller, and a request an entitled caller would send."""

    scope: str | None  # the scope the caller must act with; None: anyone
    kind: str | None = None  # the object its path names: package, version, job, upload, cluster or token
    operator_only: bool = False  # refused (403) to a cluster's token even where it reaches the object
    body: object = None  # a dict is sent as JSON; a callable makes it from the target
    content_type: str = JSON
    headers: dict = field(default_factory=dict)
    query: str = ""


OPERATIONS = {
    ("GET", "/api/schema/"): Operation(None, query="?format=json"),
    ("GET", "/api/v1/"): Operation(None),
    ("GET", "/api/v1/audit/"): Operation(ADMIN),
    ("POST", "/api/v1/bundles/"): Operation(WRITE, body=b"PK\x05\x06" + b"\0" * 18, content_type=BUNDLE_MEDIA_TYPE),
    ("GET", "/api/v1/clusters/"): Operation(READ),
    ("POST", "/api/v1/clusters/"): Operation(WRITE, operator_only=True, body={"name": "delta"}),
    ("GET", "/api/v1/clusters/{name}/"): Operation(READ, "cluster"),
    ("PUT", "/api/v1/clusters/{name}/"): Operation(
        WRITE, "cluster", body=lambda target: {"name": target.cluster, "description": "changed"}),
    ("PATCH", "/api/v1/clusters/{name}/"): Operation(WRITE, "cluster", body={"description": "changed"}),
    ("DELETE", "/api/v1/clusters/{name}/"): Operation(WRITE, "cluster", operator_only=True),
    ("GET", "/api/v1/jobs/"): Operation(READ),
    ("GET", "/api/v1/jobs/{id}/"): Operation(READ, "job"),
    ("POST", "/api/v1/jobs/{id}/cancel/"): Operation(WRITE, "job", body={}),
    ("GET", "/api/v1/packages/"): Operation(READ),
    ("GET", "/api/v1/packages/{name}/"): Operation(READ, "package"),
    ("GET", "/api/v1/packages/{name}/versions/{version}/"): Operation(READ, "version"),
    ("DELETE", "/api/v1/packages/{name}/versions/{version}/"): Operation(WRITE, "version"),
    ("GET", "/api/v1/packages/{name}/default-version/"): Operation(READ, "package"),
    ("PUT", "/api/v1/packages/{name}/default-version/"): Operation(WRITE, "package", operator_only=True,
                                                                   body={"version": "1.0.0"}),
    ("DELETE", "/api/v1/packages/{name}/default-version/"): Operation(WRITE, "package", operator_only=True),
    ("GET", "/api/v1/tokens/"): Operation(ADMIN),
    ("POST", "/api/v1/tokens/"): Operation(ADMIN, body={"name": "more", "scope": "read"}),
    ("GET", "/api/v1/tokens/{key_id}/"): Operation(ADMIN, "token"),
    ("DELETE", "/api/v1/tokens/{key_id}/"): Operation(ADMIN, "token"),
    ("POST", "/api/v1/uploads/"): Operation(WRITE, body={"size": 10}),
    ("GET", "/api/v1/uploads/{id}/"): Operation(READ, "upload"),
    ("PUT", "/api/v1/uploads/{id}/"): Operation(WRITE, "upload", body=b"0123456789",
                                                content_type="application/octet-stream",
                                                headers={"Content-Range": "bytes 0-9/10"}),
    ("DELETE", "/api/v1/uploads/{id}/"): Operation(WRITE, "upload"),
    ("POST", "/api/v1/uploads/{id}/commit/"): Operation(WRITE, "upload", body={}),
    ("POST", "/api/v1/transfers/exports/"): Operation(ADMIN, body={"to": "/nonexistent/transfer"}),
    ("POST", "/api/v1/transfers/imports/"): Operation(ADMIN, body={"from": "/nonexistent/transfer"}),
    ("GET", "/api/v1/operations/{id}/"): Operation(ADMIN, "operation"),
}

# How each kind of object answers a caller that does not reach it: as if it did not exist.
NOT_FOUND = {"package": "package_not_found", "version": "package_not_found", "job": "job_not_found",
             "upload": "upload_unknown", "cluster": "cluster_not_found"}


@dataclass(frozen=True)
class Caller:
    scope: str | None = None  # the scope of its token or user
    cluster: str | None = None
    credentials: str = "token"  # token, session (a logged-in user), none, or invalid

    @property
    def acting_scope(self) -> str | None:
        return WRITE if self.cluster and self.scope == ADMIN else self.scope


CALLERS = {
    "anonymous": Caller(credentials="none"),
    "read": Caller(READ),
    "write": Caller(WRITE),
    "admin": Caller(ADMIN),
    "staff": Caller(ADMIN, credentials="session"),
    "alpha_read": Caller(READ, "alpha"),
    "alpha_write": Caller(WRITE, "alpha"),
    "beta_write": Caller(WRITE, "beta"),
    "beta_admin": Caller(ADMIN, "beta"),
    "revoked": Caller(ADMIN, credentials="invalid"),
    "malformed": Caller(credentials="invalid"),
}
# With anonymous reads on, only callers without a token read differently.
CALLERS_WITH_ANONYMOUS_READS = ["anonymous", "alpha_read"]


@dataclass(frozen=True)
class Target:
    """The objects of one cluster a path names: its package, a job and an upload of its tokens."""

    cluster: str
    package: str
    opener: str  # the caller that opened the upload and created the job
    job: str = ""
    upload: str = ""
    key_id: str = ""
    operation: str = ""  # an operation run (not a cluster's: only admins reach runs)


def reaches(name: str, caller: Caller, kind: str, target: Target) -> bool:
    if kind == "upload":
        return name == target.opener or (caller.cluster is None and caller.acting_scope == ADMIN)
    if kind in ("token", "operation"):
        return True  # an admin without a cluster reaches every one; the scope check refuses the others
    # Each cluster sees its own package only, and a job is its creator's cluster's.
    return caller.cluster is None or caller.cluster == target.cluster


def expected(operation: Operation, name: str, target: Target, anonymous_reads: bool) -> tuple[int, str] | None:
    """The refusal (status, code) the rule calls for, or None when the caller may do it."""
    caller = CALLERS[name]
    if caller.credentials == "invalid":
        return 401, "invalid_token"
    if operation.scope is None:
        return None
    if caller.credentials == "none":
        if not (operation.scope == READ and anonymous_reads):
            return 401, "not_authenticated"
    elif not scope_includes(caller.acting_scope, operation.scope):
        return 403, "permission_denied"
    if operation.kind and not reaches(name, caller, operation.kind, target):
        return 404, NOT_FOUND[operation.kind]
    if operation.operator_only and caller.cluster is not None:
        return 403, "permission_denied"
    return None


# --- The world they act on -------------------------------------------------------------------------------------

def label(token: ApiToken) -> str:
    return f"token:{token.name} ({token.key_id})"


@pytest.fixture
def world():
    """Clusters alpha and beta each seeing one package of their own, gamma one nobody's token is bound to; a
    token of every kind; a queued job and an open upload of each cluster's write token (gamma's: of the
    unrestricted write token); clients for every caller."""
    alpha = ClusterFactory(name="alpha", sees_all_packages=False)
    beta = ClusterFactory(name="beta", sees_all_packages=False)
    gamma = ClusterFactory(name="gamma", sees_all_packages=False)
    for cluster, package in [(alpha, "small"), (beta, "big"), (gamma, "lonely")]:
        ClusterPackageRuleFactory(cluster=cluster, package_name=package)
        PackageVersionFactory(package__name=package, version="1.0.0")

    clusters = {"alpha": alpha, "beta": beta}
    tokens, clients = {}, {"anonymous": Client(), "malformed": Client(headers={"Authorization": "Bearer dcr_nonsense"})}
    for name, caller in CALLERS.items():
        if caller.credentials in ("token", "invalid") and caller.scope:
            token, plaintext = create_token(name, caller.scope, clusters.get(caller.cluster), actor=TEST_ACTOR)
            tokens[name] = token
            clients[name] = Client(headers={"Authorization": f"Bearer {plaintext}"})
    revoke_token(tokens["revoked"], TEST_ACTOR)
    staff = get_user_model().objects.create_user("staff", password="unused", is_staff=True)
    clients["staff"] = Client()
    clients["staff"].force_login(staff)

    targets = {}
    run = OperationRun.objects.create(kind=OperationRun.Kind.EXPORT, target="/elsewhere")
    for cluster, package, opener in [(alpha, "small", "alpha_write"), (beta, "big", "beta_write"),
                                     (gamma, "lonely", "write")]:
        creator = tokens[opener]
        job = IngestJobFactory(created_by=label(creator), cluster=creator.cluster)
        upload = UploadSessionFactory(size=10, created_by=label(creator), cluster=creator.cluster)
        targets[cluster.name] = Target(cluster.name, package, opener, str(job.pk), str(upload.pk), creator.key_id,
                                       str(run.pk))
    return {"clients": clients, "tokens": tokens, "targets": targets, "clusters": clusters}


def path_of(template: str, operation: Operation, target: Target) -> str:
    values = {
        None: {}, "cluster": {"name": target.cluster}, "package": {"name": target.package},
        "version": {"name": target.package, "version": "1.0.0"}, "job": {"id": target.job},
        "upload": {"id": target.upload}, "token": {"key_id": target.key_id}, "operation": {"id": target.operation},
    }[operation.kind]
    return template.format(**values) + operation.query


def send(client: Client, method: str, path: str, operation: Operation, target: Target):
    body = operation.body(target) if callable(operation.body) else operation.body
    if body is None:
        return client.generic(method, path)
    data = json.dumps(body) if isinstance(body, dict) else body
    return client.generic(method, path, data=data, content_type=operation.content_type, headers=operation.headers)


def state() -> tuple:
    """Everything a request could change (but when a token was last used)."""
    return (
        list(PackageVersion.objects.order_by("pk").values_list("pk", "content_digest")),
        list(IngestJob.objects.order_by("pk").values_list("pk", "state")),
        list(UploadSession.objects.order_by("pk").values_list("pk", "state", "offset")),
        list(Cluster.objects.order_by("name").values_list("name", "description", "sees_all_packages")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        AuditEvent.objects.count(),
    )


def answer(client: Client, method: str, path: str, operation: Operation, target: Target):
    """The response, and whether the request changed anything; whatever it changed is rolled back, so that every
    request meets the same world."""
    with transaction.atomic():
        before = state()
        response = send(client, method, path, operation, target)
        changed = state() != before
        transaction.set_rollback(True)
    return response, changed


def schema_operations() -> list[tuple[str, str]]:
    schema = Client().get("/api/schema/?format=json").json()
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item
            if method in HTTP_METHODS]


# --- The matrix ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("anonymous_reads", [False, True], ids=["token-only reads", "anonymous reads"])
def test_every_operation_answers_every_caller_as_the_rule_says(world, settings, anonymous_reads):
    settings.ANONYMOUS_READS = anonymous_reads
    operations = schema_operations()
    unruled = [f"{method} {path}" for method, path in operations if (method, path) not in OPERATIONS]
    assert not unruled, f"No expectation rule for {unruled}: add one to OPERATIONS (and to docs/access.md)."
    assert set(OPERATIONS) == set(operations), "OPERATIONS names operations the schema no longer has."

    callers = CALLERS_WITH_ANONYMOUS_READS if anonymous_reads else list(CALLERS)
    wrong, cells = [], 0
    for (method, template), operation in OPERATIONS.items():
        # An operation on no object asks the same of every target.
        targets = list(world["targets"].values()) if operation.kind else [world["targets"]["alpha"]]
        for target in targets:
            path = path_of(template, operation, target)
            for name in callers:
                cells += 1
                response, changed = answer(world["clients"][name], method, path, operation, target)
                refusal = expected(operation, name, target, anonymous_reads)
                body = json.loads(response.content) if "json" in response.get("Content-Type", "") else {}
                where = f"{name} {method} {path}: {response.status_code} {body.get('code', '')}"
                if refusal is not None:
                    if (response.status_code, body.get("code")) != refusal or not body.get("message"):
                        wrong.append(f"{where}, expected {refusal}")
                    elif changed:
                        wrong.append(f"{where} changed the registry")
                    elif refusal[0] == 401 and not response.get("WWW-Authenticate", "").startswith("Bearer"):
                        wrong.append(f"{where} without a Bearer challenge")
                elif response.status_code in (401, 403, 404) or response.status_code >= 500 or (
                        method == "GET" and response.status_code != 200):
                    wrong.append(f"{where}, expected it to be allowed")
    assert cells > len(OPERATIONS) * len(callers)
    assert not wrong, "\n".join(wrong)


# --- The attacks, end to end -----------------------------------------------------------------------------------

def bearer(plaintext: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {plaintext}"})


def publish(client, tmp_path, name, version, seed=1, query=""):
    built = make_bundle(tmp_path / uuid.uuid4().hex, name=name, version=version,
                        assets=[AssetSpec("payload", "p.tgz", 700, seed)], images=[])
    response = client.post(f"/api/v1/bundles/{query}", data=built.path.read_bytes(), content_type=BUNDLE_MEDIA_TYPE)
    assert response.status_code == 202, response.content
    return client.get(response["Location"]).json()


@pytest.fixture
def two_clusters(client, tmp_path):
    """alpha sees small, beta sees big 2.x; both published by the operator; a write token of each cluster."""
    alpha = ClusterFactory(name="alpha", sees_all_packages=False)
    ClusterPackageRuleFactory(cluster=alpha, package_name="small")
    beta = ClusterFactory(name="beta", sees_all_packages=False)
    ClusterPackageRuleFactory(cluster=beta, package_name="big", versions="2.*")
    assert publish(client, tmp_path, "small", "1.0.0")["state"] == "succeeded"
    assert publish(client, tmp_path, "big", "2.0.0")["state"] == "succeeded"
    return {"alpha": bearer(create_token("alpha ci", "write", alpha, actor=TEST_ACTOR)[1]),
            "beta": bearer(create_token("beta ci", "write", beta, actor=TEST_ACTOR)[1]),
            "alpha_read": bearer(create_token("alpha pulls", "read", alpha, actor=TEST_ACTOR)[1])}


def catalogue() -> list[tuple]:
    return list(PackageVersion.objects.order_by("pk").values_list(
        "pk", "package__name", "version", "release_version", "content_digest"))


def test_a_clusters_token_cannot_replace_another_clusters_version(two_clusters, tmp_path, settings):
    before, blobs = catalogue(), set(Blob.objects.values_list("digest", flat=True))
    beta = two_clusters["beta"]

    replaced = publish(beta, tmp_path, "small", "1.0.0", seed=2, query="?replace=true")
    assert replaced["state"] == "failed", replaced
    assert replaced["error"]["code"] == "package_outside_cluster"
    assert replaced["error"]["details"] == {"cluster": "beta", "package": "small", "version": "1.0.0"}
    assert replaced["result"] is None
    # An identical copy learns nothing either: refused before the published version is looked at.
    identical = publish(beta, tmp_path, "small", "1.0.0", seed=1)
    assert identical["error"]["code"] == "package_outside_cluster" and identical["result"] is None
    # A version of its own package outside its version patterns is refused too.
    assert publish(beta, tmp_path, "big", "1.0.0")["error"]["code"] == "package_outside_cluster"

    assert catalogue() == before
    assert set(Blob.objects.values_list("digest", flat=True)) == blobs
    assert list(settings.STAGING_DIR.rglob("*.dcos")) == []
    # What its cluster sees it publishes.
    assert publish(beta, tmp_path, "big", "2.1.0")["state"] == "succeeded"


def test_a_resumable_upload_of_a_clusters_token_is_refused_the_same_way(two_clusters, tmp_path):
    before = catalogue()
    beta = two_clusters["beta"]
    built = make_bundle(tmp_path / "resumable", name="small", version="1.0.0",
                        assets=[AssetSpec("payload", "p.tgz", 700, 3)], images=[])
    data = built.path.read_bytes()
    session = beta.post("/api/v1/uploads/", data={"size": len(data), "replace": True}, content_type=JSON).json()
    beta.put(session["url"], data=data, content_type="application/octet-stream",
             headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"})
    committed = beta.post(f"{session['url']}commit/", data={}, content_type=JSON)
    assert committed.status_code == 202
    job = beta.get(committed["Location"]).json()
    assert (job["state"], job["error"]["code"]) == ("failed", "package_outside_cluster")
    assert IngestJob.objects.get(pk=job["id"]).cluster.name == "beta"
    assert catalogue() == before


def test_a_clusters_token_cannot_touch_another_tokens_upload_or_another_clusters_job(two_clusters, settings):
    settings.ANONYMOUS_READS = False
    alpha, beta, alpha_read = two_clusters["alpha"], two_clusters["beta"], two_clusters["alpha_read"]
    opened = alpha.post("/api/v1/uploads/", data={"size": 10}, content_type=JSON)
    assert opened.status_code == 201
    url = opened["Location"]
    alpha_job = IngestJobFactory(created_by="token:alpha ci", cluster=Cluster.objects.get(name="alpha"))
    before = (list(UploadSession.objects.values_list("state", "offset")), alpha_job.state, AuditEvent.objects.count())

    for response in [
        beta.put(url, data=b"0123456789", content_type="application/octet-stream",
                 headers={"Content-Range": "bytes 0-9/10"}),
        beta.post(f"{url}commit/", data={}, content_type=JSON),
        beta.delete(url),
        beta.get(url),
        alpha_read.get(url),  # the same cluster, another token
    ]:
        assert (response.status_code, response.json()["code"]) == (404, "upload_unknown")
    for response in [beta.post(f"/api/v1/jobs/{alpha_job.pk}/cancel/"), beta.get(f"/api/v1/jobs/{alpha_job.pk}/")]:
        assert (response.status_code, response.json()["code"]) == (404, "job_not_found")
    alpha_job.refresh_from_db()
    assert (list(UploadSession.objects.values_list("state", "offset")), alpha_job.state,
            AuditEvent.objects.count()) == before
    # Its own are its own.
    assert alpha.get(url).status_code == 200
    assert alpha_read.get(f"/api/v1/jobs/{alpha_job.pk}/").status_code == 200
    assert alpha.post(f"/api/v1/jobs/{alpha_job.pk}/cancel/").json()["state"] == "cancelled"


def test_a_clusters_token_lists_only_its_clusters_jobs(two_clusters, client, tmp_path, settings):
    settings.ANONYMOUS_READS = False
    alpha_read, beta = two_clusters["alpha_read"], two_clusters["beta"]
    beta_job = publish(beta, tmp_path, "big", "2.2.0")
    alpha_job = publish(two_clusters["alpha"], tmp_path, "small", "1.1.0")

    assert [job["id"] for job in alpha_read.get("/api/v1/jobs/").json()["results"]] == [alpha_job["id"]]
    assert alpha_read.get("/api/v1/jobs/?package=big").json()["count"] == 0
    assert alpha_read.get(f"/api/v1/jobs/{beta_job['id']}/").status_code == 404
    assert [job["id"] for job in beta.get("/api/v1/jobs/?package=big").json()["results"]] == [beta_job["id"]]
    # Tokens without a cluster see every job, the operator's uploads among them.
    assert client.get("/api/v1/jobs/").json()["count"] == 4
    assert bearer(create_token("all pulls", "read", actor=TEST_ACTOR)[1]).get("/api/v1/jobs/").json()["count"] == 4

    # A version its cluster sees, uploaded by someone else: the version is there, the upload job is not.
    operators = alpha_read.get("/api/v1/packages/small/versions/1.0.0/").json()
    assert operators["version"] == "1.0.0" and operators["upload_job"] is None
    own = alpha_read.get("/api/v1/packages/small/versions/1.1.0/").json()
    assert own["upload_job"]["id"] == alpha_job["id"]
    assert client.get("/api/v1/packages/small/versions/1.0.0/").json()["upload_job"] is not None


def test_publishing_rechecks_the_clusters_rules(two_clusters, tmp_path, monkeypatch):
    """The rules may change while a job runs: publishing asks again, and a refusal there leaves nothing either."""
    monkeypatch.setattr(pipeline, "check_may_publish", lambda *args: None)  # the check at validation
    before, blobs = catalogue(), set(Blob.objects.values_list("digest", flat=True))
    job = publish(two_clusters["beta"], tmp_path, "small", "1.0.0", seed=4, query="?replace=true")
    assert (job["state"], job["error"]["code"]) == ("failed", "package_outside_cluster")
    assert [stage["stage"] for stage in job["stages"]][-1] == "publish"
    assert catalogue() == before
    assert set(Blob.objects.values_list("digest", flat=True)) == blobs


def test_a_retried_job_stays_its_clusters(two_clusters, tmp_path, settings):
    beta = Cluster.objects.get(name="beta")
    staged = settings.STAGING_DIR / "bundles" / "kept.dcos"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"a bundle the registry failed on")
    failed = IngestJobFactory(state="failed", error_code="internal_error", staging_path=str(staged),
                              created_by="token:beta ci", cluster=beta)
    retry = services.retry_job(failed, TEST_ACTOR)
    assert (retry.created_by, retry.cluster) == ("token:beta ci", beta)


def test_a_clusters_token_changes_its_clusters_description_and_dcos_version_only(two_clusters):
    beta = two_clusters["beta"]
    shown = beta.get("/api/v1/clusters/beta/").json()
    assert beta.put("/api/v1/clusters/beta/", data=shown, content_type=JSON).status_code == 200
    changed = beta.patch("/api/v1/clusters/beta/", data={"description": "ours", "dcos_version": "2.2"},
                         content_type=JSON)
    assert changed.status_code == 200 and changed.json()["dcos_version"] == "2.2"
    before = list(Cluster.objects.values_list("name", "sees_all_packages"))
    for refused in [{"sees_all_packages": True}, {"rules": [{"package_name": "small"}]},
                    {"rules": [{"package_name": "big", "versions": "*"}]}, {"name": "alpha"}, {"name": "renamed"}]:
        response = beta.patch("/api/v1/clusters/beta/", data=refused, content_type=JSON)
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied"), refused
        assert response.json()["details"]["fields"] == list(refused)
    # Whether another cluster's name is taken is not its business: refused before validation.
    taken = beta.post("/api/v1/clusters/", data={"name": "alpha"}, content_type=JSON)
    assert (taken.status_code, taken.json()["code"]) == (403, "permission_denied")
    assert beta.delete("/api/v1/clusters/beta/").status_code == 403
    assert list(Cluster.objects.values_list("name", "sees_all_packages")) == before
    assert beta.get("/clusters/alpha/repo").status_code == 404
    assert beta.get("/clusters/beta/repo").status_code == 200


def test_a_clusters_admin_token_acts_with_write(two_clusters):
    beta = Cluster.objects.get(name="beta")
    admin = bearer(create_token("beta admin", "admin", beta, actor=TEST_ACTOR)[1])
    for path in ["/api/v1/tokens/", "/api/v1/audit/"]:
        response = admin.get(path)
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
        assert "acts with write, as a token of cluster beta" in response.json()["message"]
    created = admin.post("/api/v1/tokens/", data={"name": "escape", "scope": "admin"}, content_type=JSON)
    assert created.status_code == 403 and not ApiToken.objects.filter(name="escape").exists()
    # No more: an upload session of another token is no admin's of a cluster.
    other = two_clusters["beta"].post("/api/v1/uploads/", data={"size": 10}, content_type=JSON)
    assert admin.get(other["Location"]).status_code == 404


def test_removing_a_cluster_ends_what_its_tokens_started_and_keeps_the_records(two_clusters, client, settings):
    beta = Cluster.objects.get(name="beta")
    writer = two_clusters["beta"]
    opened = writer.post("/api/v1/uploads/", data={"size": 10}, content_type=JSON)
    writer.put(opened["Location"], data=b"01234", content_type="application/octet-stream",
               headers={"Content-Range": "bytes 0-4/10"})
    queued = IngestJobFactory(created_by="token:beta ci", cluster=beta)
    done = IngestJobFactory(created_by="token:beta ci", cluster=beta, state="succeeded")
    versions = catalogue()

    assert client.delete("/api/v1/clusters/beta/").status_code == 204
    assert writer.get("/api/v1/jobs/").status_code == 401  # its tokens went with it
    session = UploadSession.objects.get(pk=opened.json()["id"])
    assert (session.state, session.cluster, session.created_by.split(" (")[0]) == ("cancelled", None, "token:beta ci")
    assert [path for path in settings.STAGING_DIR.rglob("*") if path.is_file()] == []
    kept = IngestJob.objects.filter(pk__in=[queued.pk, done.pk]).order_by("state")
    assert list(kept.values_list("state", "cluster", "created_by")) == [
        ("cancelled", None, "token:beta ci"), ("succeeded", None, "token:beta ci")]
    assert catalogue() == versions
