"""API tokens: create (the secret is shown once), resolve, revoke. Plain functions for the API, admin and commands;
creating and revoking are written to the audit log."""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from access.models import Cluster
from dcos_bundle.digests import sha256_hex
from dcos_bundle.errors import ErrorCode, RegistryError

from . import audit
from .audit import Actor
from .models import ApiToken, AuditEvent

# dcr_<12 hex: the key id>_<43 url-safe characters: the secret>
TOKEN_FORMAT = re.compile(r"^dcr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
SCOPE_ORDER = [ApiToken.Scope.READ, ApiToken.Scope.WRITE, ApiToken.Scope.ADMIN]
# last_used_at is written at most this often per token: a pull of many layers is not many writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    # The secret is 256 random bits: a fast hash is enough, unlike for passwords.
    return sha256_hex(secret.encode())


def scope_includes(held: str, needed: str) -> bool:
    return SCOPE_ORDER.index(held) >= SCOPE_ORDER.index(needed)


def create_token(name: str, scope: str, cluster: Cluster | None = None, *, actor: Actor,
                 expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token, created by ``actor``, and its plaintext, which exists only in this return value."""
    if scope not in SCOPE_ORDER:
        raise RegistryError(ErrorCode.INVALID_SCOPE, f"Scope {scope!r} is not one of {', '.join(SCOPE_ORDER)}.", scope=scope)
    if not name.strip():
        raise RegistryError(ErrorCode.INVALID_REQUEST, "A token needs a name saying what it is for.")
    if expires_at is not None and expires_at <= timezone.now():
        raise RegistryError(ErrorCode.INVALID_REQUEST, "A token cannot expire in the past.", expires_at=expires_at.isoformat())
    token = ApiToken(name=name.strip(), scope=scope, cluster=cluster, expires_at=expires_at)
    return token, issue(token, actor)


def issue(token: ApiToken, actor: Actor) -> str:
    """Give an unsaved token its key and secret, save it as created by ``actor``, and return the plaintext."""
    secret = secrets.token_urlsafe(32)
    token.key_id, token.secret_hash, token.created_by = secrets.token_hex(6), _hash(secret), actor.label
    with transaction.atomic():
        token.save()
        audit.record(actor, AuditEvent.Action.TOKEN_CREATE, str(token), scope=token.scope,
                     cluster=token.cluster.name if token.cluster else "")
    return f"dcr_{token.key_id}_{secret}"


def resolve(plaintext: str) -> ApiToken:
    """The live token a plaintext names; RegistryError ``invalid_token`` (always the same words) otherwise."""
    match = TOKEN_FORMAT.match(plaintext or "")
    token = ApiToken.objects.select_related("cluster").filter(key_id=match.group(1)).first() if match else None
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(match.group(2))) or not _is_live(token):
        # One answer for unknown, wrong, revoked and expired: nothing to learn from probing.
        raise RegistryError(ErrorCode.INVALID_TOKEN, "The token is not valid: unknown, revoked or expired.")
    _mark_used(token)
    return token


def live_token(key_id: str) -> ApiToken | None:
    """The token of ``key_id`` while it is neither revoked nor expired: a browser session signed in with it (whose
    secret was checked at sign-in) lasts as long as the token does."""
    token = ApiToken.objects.select_related("cluster").filter(key_id=key_id).first()
    if token is None or not _is_live(token):
        return None
    _mark_used(token)
    return token


def _is_live(token: ApiToken) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > timezone.now())


def _mark_used(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


def find_token(key_id: str) -> ApiToken:
    token = ApiToken.objects.select_related("cluster").filter(key_id=key_id).first()
    if token is None:
        raise RegistryError(ErrorCode.TOKEN_NOT_FOUND, f"Token [{key_id}] not found", key_id=key_id)
    return token


def revoke_token(token: ApiToken, actor: Actor) -> ApiToken:
    """Revoke at once; revoking twice keeps the first time."""
    with transaction.atomic():
        if token.revoked_at is None:
            ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
            token.refresh_from_db()
        audit.record(actor, AuditEvent.Action.TOKEN_REVOKE, str(token))
    return token
