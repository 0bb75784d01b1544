"""Who is asking: a token (Bearer, Token or Basic credentials), a browser session signed in with a token or as a
user, or nobody.

Writes always need a ``write`` (or ``admin``) token or a staff session; reads are anonymous unless
ANONYMOUS_READS is off. What each principal then reaches is ``principals.py``'s to say.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.contrib.auth import logout
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from dcos_bundle.errors import ErrorCode, RegistryError

from .audit import Actor
from .principals import ADMIN, READ, WRITE, Principal
from .tokens import live_token, resolve

WWW_AUTHENTICATE = 'Bearer realm="DC/OS Package Registry"'
# The key id of the token a browser session signed in with (never its secret).
SESSION_TOKEN_KEY = "registry_token"
ANONYMOUS = Principal("anonymous")
# Whoever runs the registry's management commands: the operator, with every right.
OPERATOR = Principal("user", "manage.py", ADMIN)


def anonymous() -> Principal:
    return ANONYMOUS


def user_principal(user) -> Principal:
    # Staff manage the registry in the admin; other users may only read.
    return Principal("user", user.get_username(), ADMIN if user.is_staff else READ)


def request_actor(request) -> Actor:
    """Who makes the change ``request`` asks for: the API's principal (DRF's request.user) and its address."""
    return request.user.actor(request.META.get("REMOTE_ADDR"))


def admin_actor(request) -> Actor:
    """Who makes a change in the admin, where request.user is the Django user."""
    return user_principal(request.user).actor(request.META.get("REMOTE_ADDR"))


def presented_token(request) -> str | None:
    """The token in the Authorization header (Bearer, Token, or Basic with the token as password), if any."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    kind, _, value = header.partition(" ")
    kind, value = kind.lower(), value.strip()
    if kind in ("bearer", "token") and value:
        return value
    if kind == "basic":
        try:
            _, separator, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
            separator = ""
        if separator and password:
            return password
        raise RegistryError(ErrorCode.INVALID_TOKEN, "Basic credentials must be base64 of <any user name>:<token>.")
    raise RegistryError(ErrorCode.INVALID_TOKEN, f"Authorization scheme {kind!r} is not supported: send 'Bearer <token>'.")


def acting_for(request, cluster: str) -> None:
    """Mark the request as made for ``cluster``: its log line and metrics say so."""
    request.registry_cluster = cluster


def _principal_of_token(request, token) -> Principal:
    if token.cluster is not None:
        acting_for(request, token.cluster.name)
    return Principal("token", token.name, token.scope, token.cluster, token.key_id)


def token_principal(request, plaintext: str) -> Principal:
    return _principal_of_token(request, resolve(plaintext))


def sign_in_with_token(request, plaintext: str) -> Principal:
    """Sign the browser's session in as the token ``plaintext`` (RegistryError ``invalid_token`` for a bad one):
    from now on the session acts as that token does, a cluster's inside its cluster, until the token is revoked
    or expires or the session signs out."""
    principal = token_principal(request, plaintext)
    logout(request)  # a new session: nothing of a user signed in before carries over
    request.session[SESSION_TOKEN_KEY] = principal.key_id
    return principal


def session_token_principal(request) -> Principal | None:
    """The token a browser session signed in with, while the token is live."""
    session = getattr(request, "session", None)
    key_id = session.get(SESSION_TOKEN_KEY) if session is not None else None
    token = live_token(key_id) if key_id else None
    return _principal_of_token(request, token) if token is not None else None


def principal_of(request) -> Principal:
    """Who asks, from a token, a session signed in with one, or the session of a logged-in user; RegistryError
    ``invalid_token`` for a bad token."""
    plaintext = presented_token(request)
    if plaintext is not None:
        return token_principal(request, plaintext)
    if (signed_in := session_token_principal(request)) is not None:
        return signed_in
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        return user_principal(user)
    return ANONYMOUS


def reader_of(request, refuse):
    """The principal allowed to read, or ``refuse(status, code, message)``'s response when it may not.

    For the faces outside the REST API (/repo, /resource, /v2), each with its own error shape.
    """
    try:
        principal = principal_of(request)
    except RegistryError as error:
        return None, refuse(401, error.code, error.message)
    if not principal.is_authenticated and not settings.ANONYMOUS_READS:
        return None, refuse(401, ErrorCode.NOT_AUTHENTICATED, "This registry serves only callers with a token: send "
                                                      "'Authorization: Bearer <token>'.")
    return principal, None


class RegistryAuthentication(SessionAuthentication):
    """Tokens first; otherwise a session signed in with a token or as a user, with Django's CSRF check as for any
    session."""

    def authenticate(self, request):
        plaintext = presented_token(request._request)
        if plaintext is not None:
            return token_principal(request._request, plaintext), None
        if (signed_in := session_token_principal(request._request)) is not None:
            self.enforce_csrf(request)
            return signed_in, None
        found = super().authenticate(request)
        return (user_principal(found[0]), None) if found else None

    def authenticate_header(self, request) -> str:
        return WWW_AUTHENTICATE


class ScopePermission(BasePermission):
    """Reads need ``read`` (or nothing, while ANONYMOUS_READS is on), writes ``write``; a view may ask for more."""

    def has_permission(self, request, view) -> bool:
        needed = getattr(view, "required_scope", None) or (READ if request.method in SAFE_METHODS else WRITE)
        principal = request.user
        if needed == READ and settings.ANONYMOUS_READS:
            return True
        if not principal.is_authenticated:
            raise exceptions.NotAuthenticated(
                f"This needs a token with the {needed} scope: send 'Authorization: Bearer <token>'.")
        if not principal.may(needed):
            bound = f", as a token of cluster {principal.cluster.name}" if principal.cluster is not None else ""
            raise exceptions.PermissionDenied(
                f"This needs the {needed} scope; {principal.label} acts with {principal.acting_scope}{bound}.")
        return True


class TokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes our authentication: an API token as a bearer token."""

    target_class = RegistryAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API token (dcr_…): Authorization: Bearer <token>, or Basic with it as password."}
