import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from access.auth import OPERATOR
from access.clusters import find_cluster
from access.models import ApiToken
from access.tokens import create_token, find_token, revoke_token
from dcos_bundle.errors import RegistryError


class Command(BaseCommand):
    help = "Create, list and revoke API tokens. A new token's plaintext is printed once and never stored."

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True)
        create = verbs.add_parser("create", help="Create a token and print it.")
        create.add_argument("--name", required=True, help="What the token is for.")
        create.add_argument("--scope", required=True, choices=ApiToken.Scope.values)
        create.add_argument("--cluster", help="Bind the token to this cluster: it sees only its packages.")
        create.add_argument("--expires-in-days", type=float, help="Expire after this many days (default: never).")
        create.add_argument("--json", action="store_true", dest="as_json")
        listing = verbs.add_parser("list", help="List tokens (never their secrets).")
        listing.add_argument("--json", action="store_true", dest="as_json")
        revoke = verbs.add_parser("revoke", help="Revoke a token by its key id.")
        revoke.add_argument("key_id")

    def handle(self, *args, verb, **options):
        try:
            getattr(self, verb)(**options)
        except RegistryError as error:
            raise CommandError(error.message) from None

    def create(self, name, scope, cluster, expires_in_days, as_json, **_):
        bound = find_cluster(cluster) if cluster else None
        expires = timezone.now() + timedelta(days=expires_in_days) if expires_in_days is not None else None
        token, plaintext = create_token(name, scope, bound, actor=OPERATOR.actor(), expires_at=expires)
        if as_json:
            self.stdout.write(json.dumps({"key_id": token.key_id, "name": token.name, "scope": scope,
                                          "cluster": cluster or None, "token": plaintext}))
        else:
            self.stdout.write(plaintext)
            self.stderr.write(f"Token {token} ({scope}{', cluster ' + cluster if cluster else ''}): "
                              "store it now, it is not shown again.")

    def list(self, as_json, **_):
        tokens = list(ApiToken.objects.select_related("cluster"))
        rows = [{"key_id": t.key_id, "name": t.name, "scope": t.scope, "cluster": t.cluster.name if t.cluster else None,
                 "created_at": t.created_at.isoformat(), "last_used_at": t.last_used_at and t.last_used_at.isoformat(),
                 "revoked_at": t.revoked_at and t.revoked_at.isoformat()} for t in tokens]
        if as_json:
            self.stdout.write(json.dumps(rows))
            return
        for row in rows:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
            self.stdout.write(f"{row['key_id']}  {row['scope']:<5}  {row['cluster'] or '-':<16}  {state:<10}  "
                              f"{row['name']}")

    def revoke(self, key_id, **_):
        token = revoke_token(find_token(key_id), OPERATOR.actor())
        self.stdout.write(f"Revoked {token} at {token.revoked_at:%Y-%m-%d %H:%M:%S}.")
