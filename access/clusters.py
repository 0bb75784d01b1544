"""Clusters: which packages each DC/OS cluster may see, and at which DC/OS version. Plain functions; creating,
changing and removing a cluster are written to the audit log."""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet

from dcos_bundle.errors import ErrorCode, RegistryError
from dcos_bundle.universe.rules import Rules, allows, pattern_regex

from . import audit
from .audit import Actor
from .models import AuditEvent, Cluster, ClusterPackageRule
from .validators import version_patterns


@dataclass(frozen=True)
class Visibility:
    """What a cluster may see; hashable, so a rendered repository can be cached for it."""

    # None: every package (the rule language: dcos_bundle.universe.rules).
    rules: Rules | None = None

    def versions(self, versions: QuerySet) -> QuerySet:
        """The PackageVersions of ``versions`` the cluster may see, filtered in the database."""
        if self.rules is None:
            return versions
        allowed = Q(pk__in=[])
        for package, patterns in self.rules:
            rule = Q(package__name=package)
            if patterns:
                rule &= functools.reduce(operator.or_,
                                         (Q(version__regex=pattern_regex(pattern)) for pattern in patterns))
            allowed |= rule
        return versions.filter(allowed)

    def allows(self, name: str, version: str) -> bool:
        return self.rules is None or allows(self.rules, name, version)


EVERYTHING = Visibility()


def dcos_version_of(cluster: Cluster) -> tuple[int, ...] | None:
    return tuple(int(part) for part in cluster.dcos_version.split(".")) if cluster.dcos_version else None


def visibility_of(cluster: Cluster) -> Visibility:
    if cluster.sees_all_packages:
        return EVERYTHING
    return Visibility(tuple(sorted(
        (rule.package_name, version_patterns(rule.versions)) for rule in cluster.rules.all()
    )))


def find_cluster(name: str, clusters: QuerySet[Cluster] | None = None) -> Cluster:
    """The cluster of this name among ``clusters`` (default: all); one outside them is as unknown as a missing one."""
    clusters = Cluster.objects.prefetch_related("rules") if clusters is None else clusters
    cluster = clusters.filter(name=name).first()
    if cluster is None:
        raise RegistryError(ErrorCode.CLUSTER_NOT_FOUND, f"Cluster [{name}] not found", cluster=name)
    return cluster


def save_cluster(cluster: Cluster, fields: dict, actor: Actor) -> Cluster:
    """Create or change a cluster; ``rules``, when given, replace its whole allow-list."""
    fields = dict(fields)
    rules = fields.pop("rules", None)
    action = AuditEvent.Action.CLUSTER_CREATE if cluster.pk is None else AuditEvent.Action.CLUSTER_CHANGE
    with transaction.atomic():
        for name, value in fields.items():
            setattr(cluster, name, value)
        cluster.save()
        if rules is not None:
            cluster.rules.all().delete()
            ClusterPackageRule.objects.bulk_create(ClusterPackageRule(cluster=cluster, **rule) for rule in rules)
        # The log shows the cluster as it now is.
        audit.record(actor, action, cluster.name, description=cluster.description, dcos_version=cluster.dcos_version,
                     sees_all_packages=cluster.sees_all_packages,
                     rules={rule.package_name: rule.versions for rule in cluster.rules.all()})
    return cluster


def remove_cluster(cluster: Cluster, actor: Actor) -> None:
    """Remove a cluster and its rules; its tokens go with it."""
    with transaction.atomic():
        audit.record(actor, AuditEvent.Action.CLUSTER_REMOVE, cluster.name)
        cluster.delete()
