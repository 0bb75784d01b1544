"""The services that change tokens and clusters write the audit record themselves: a caller that is no view
(a command, a script, a future API) cannot skip it."""

from __future__ import annotations

import pytest

from access.audit import Actor
from access.clusters import find_cluster, remove_cluster, save_cluster
from access.models import ApiToken, AuditEvent, Cluster
from access.tokens import create_token, revoke_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor() -> Actor:
    """A cluster's token, acting from an address."""
    return Actor("token:script (0123456789ab)", Cluster.objects.create(name="alpha"), "10.1.2.3")


def logged() -> list[tuple]:
    return list(AuditEvent.objects.order_by("id").values_list(
        "actor", "action", "target", "cluster", "remote_addr", "details"))


def by(actor: Actor, action: str, target: str, **details) -> tuple:
    return (actor.label, action, target, actor.cluster.name, actor.remote_addr, details)


def test_creating_and_revoking_a_token_is_logged_for_the_actor(actor):
    token, _ = create_token("deploy", "read", actor.cluster, actor=actor)
    assert ApiToken.objects.get(pk=token.pk).created_by == actor.label
    revoke_token(token, actor)
    assert logged() == [
        by(actor, "token_create", str(token), scope="read", cluster="alpha"),
        by(actor, "token_revoke", str(token)),
    ]


def test_a_refused_token_is_not_logged(actor):
    with pytest.raises(Exception):
        create_token(" ", "read", actor=actor)
    assert logged() == []


def test_creating_changing_and_removing_a_cluster_is_logged_as_it_now_is(actor):
    save_cluster(Cluster(), {"name": "edge", "rules": [{"package_name": "kafka", "versions": "2.*"}]}, actor)
    save_cluster(find_cluster("edge"), {"dcos_version": "2.2", "sees_all_packages": False}, actor)
    remove_cluster(find_cluster("edge"), actor)
    assert not Cluster.objects.filter(name="edge").exists()
    assert logged() == [
        by(actor, "cluster_create", "edge", description="", dcos_version="", sees_all_packages=True,
           rules={"kafka": "2.*"}),
        by(actor, "cluster_change", "edge", description="", dcos_version="2.2", sees_all_packages=False,
           rules={"kafka": "2.*"}),
        by(actor, "cluster_remove", "edge"),
    ]
