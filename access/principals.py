"""The principal: who asks (a token, a user, nobody), and the one rule of what each principal reaches.

Every endpoint and the ingest pipeline ask here; nothing else decides. docs/access.md states the rule:

- A principal without a cluster (a token created without one, a logged-in user, nobody while
  ANONYMOUS_READS is on) reaches whatever its scope allows.
- A cluster's principal (a token created with a cluster) stays inside its cluster. Packages and
  versions: it reads, uploads, replaces and removes only those its cluster's rules allow
  (``Visibility``); a bundle of anything else fails its job (``check_may_publish``). Jobs: it sees
  and cancels those a principal of its cluster created. Clusters: it reads its own, and may change
  its description and DC/OS version only. It acts with at most the ``write`` scope, since tokens
  and the audit log span every cluster.
- An upload session belongs to the principal that opened it; unrestricted admins (staff, admin
  tokens without a cluster) reach every one.

What a principal does not reach does not exist for it: the views answer 404, as for an unknown
object. Records a principal creates carry ``created_by`` (its label) and ``cluster`` (its cluster,
or none): ``jobs`` and ``sessions`` filter on those fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from dcos_bundle.errors import ErrorCode, RegistryError

from .audit import Actor
from .clusters import EVERYTHING, Visibility, visibility_of
from .models import ApiToken, Cluster
from .tokens import SCOPE_ORDER, scope_includes

READ, WRITE, ADMIN = ApiToken.Scope.READ, ApiToken.Scope.WRITE, ApiToken.Scope.ADMIN
# What only the operator changes of a cluster (a cluster's principal may change the rest: its description and DC/OS
# version): the rules are what confine the cluster's tokens, and its name is how tokens and Cosmos find it.
OPERATOR_CLUSTER_FIELDS = ("name", "sees_all_packages", "rules")


@dataclass(frozen=True)
class Principal:
    """The caller, whatever proved it; DRF sees it as ``request.user``."""

    kind: str  # token, user or anonymous
    name: str = ""
    scope: str | None = None
    cluster: Cluster | None = None
    key_id: str = ""

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def label(self) -> str:
        """Names it in the audit log, and as the creator of jobs and upload sessions (a token's never changes)."""
        if self.kind == "token":
            return f"token:{self.name} ({self.key_id})"
        return f"user:{self.name}" if self.kind == "user" else "anonymous"

    @property
    def acting_scope(self) -> str | None:
        """The scope it acts with: its own, but never more than ``write`` for a cluster's principal."""
        if self.scope is None or self.cluster is None:
            return self.scope
        return min(self.scope, WRITE, key=SCOPE_ORDER.index)

    def may(self, scope: str) -> bool:
        return self.acting_scope is not None and scope_includes(self.acting_scope, scope)

    def actor(self, remote_addr: str | None = None) -> Actor:
        """This principal making a change: what the audit log records, and what the records it creates name."""
        return Actor(self.label, self.cluster, remote_addr)

    @property
    def visibility(self) -> Visibility:
        """The packages and versions it reads and changes."""
        return visibility_of(self.cluster) if self.cluster is not None else EVERYTHING

    def jobs(self, jobs: QuerySet) -> QuerySet:
        """The ingest jobs of ``jobs`` it sees and cancels: those a principal of its cluster created, or all."""
        return jobs if self.cluster is None else jobs.filter(cluster=self.cluster)

    def sessions(self, sessions: QuerySet) -> QuerySet:
        """The upload sessions of ``sessions`` it uses: those it opened, or all for an unrestricted admin."""
        return sessions if self.may(ADMIN) else sessions.filter(created_by=self.label)

    def clusters(self) -> QuerySet[Cluster]:
        """The clusters it reads (and, with ``write``, changes within ``check_cluster_change``)."""
        clusters = Cluster.objects.prefetch_related("rules")
        return clusters if self.cluster is None else clusters.filter(pk=self.cluster.pk)

    def check_manages_clusters(self) -> None:
        """Refuse creating or removing a cluster to a cluster's principal."""
        if self.cluster is not None:
            raise RegistryError(ErrorCode.PERMISSION_DENIED, f"A token of cluster {self.cluster.name} neither creates "
                                "nor removes clusters.", cluster=self.cluster.name)

    def check_pins_default_versions(self) -> None:
        """Refuse pinning a default version to a cluster's principal: a package's default is every cluster's."""
        if self.cluster is not None:
            raise RegistryError(ErrorCode.PERMISSION_DENIED, f"A token of cluster {self.cluster.name} does not choose "
                                "a package's default version: it is the same for every cluster.",
                                cluster=self.cluster.name)

    def check_cluster_change(self, cluster: Cluster, data) -> None:
        """Refuse a cluster's principal a change of ``cluster`` (one it reaches) beyond its description and DC/OS
        version. ``data`` is the request's body as sent: fields sent as they are (a PUT of what it read) change
        nothing."""
        if self.cluster is None:
            return
        changed = [name for name in OPERATOR_CLUSTER_FIELDS
                   if name in data and _comparable(name, data[name]) != _current(cluster, name)]
        if changed:
            raise RegistryError(
                ErrorCode.PERMISSION_DENIED, f"A token of cluster {self.cluster.name} may change its cluster's "
                f"description and dcos_version, not {', '.join(changed)}: what a cluster sees is the operator's.",
                cluster=self.cluster.name, fields=changed,
            )


def _comparable(field: str, value):
    if field == "rules":
        try:
            return sorted((rule["package_name"], rule.get("versions", "")) for rule in value)
        except (TypeError, KeyError, AttributeError):
            return None  # not a list of rules: no cluster's rules look like that
    return value


def _current(cluster: Cluster, field: str):
    if field == "rules":
        return sorted((rule.package_name, rule.versions) for rule in cluster.rules.all())
    return getattr(cluster, field)


def check_may_publish(cluster: Cluster | None, name: str, version: str) -> None:
    """Refuse what a principal of ``cluster`` uploads when the cluster may not see it (None: anything goes).

    Asked by the pipeline once validation knows the package, before it looks for a published version
    (whether one exists is none of the uploader's business), and again when it publishes.
    """
    if cluster is not None and not visibility_of(cluster).allows(name, version):
        raise RegistryError(
            ErrorCode.PACKAGE_OUTSIDE_CLUSTER,
            f"The bundle is {name} {version}, which cluster {cluster.name} may not see: its tokens upload and replace "
            "only what its rules allow. Nothing was published.",
            cluster=cluster.name, package=name, version=version,
        )
