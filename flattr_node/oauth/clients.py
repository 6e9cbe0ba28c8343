"""OAuth apps: registering them, matching their redirect URIs, and what a
person has allowed them. Plain values in, one transaction, domain errors out."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from peewee import JOIN

from ..db import database
from ..errors import NotFound, Validation
from ..i18n import said
from ..models import ApiToken, User, utcnow
from ..services.validate import text
from .models import OAuthClient, OAuthRefresh

MAX_REDIRECT_URIS = 10


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri) -> str:
    """A redirect URI an app may register: https, or http on a loopback
    address (RFC 8252 §7.3), or a private-use scheme such as
    com.example.app:/cb (RFC 8252 §7.1); absolute, no fragment."""
    if not isinstance(uri, str) or not uri.strip() or len(uri) > 2000:
        raise Validation(said('a redirect URI is required (at most 2000 characters)'), field="redirect_uris")
    uri = uri.strip()
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise Validation(said('%(uri)s is not a valid URI', uri=repr(uri)), field="redirect_uris") from None
    if parts.fragment or "#" in uri or any(ord(c) < 33 for c in uri):
        raise Validation(said('%(uri)s: a redirect URI has no fragment and no spaces', uri=repr(uri)), field="redirect_uris")
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return uri
    if scheme == "http" and parts.hostname and (_is_loopback(parts.hostname) or parts.hostname == "localhost"):
        return uri
    if "." in scheme and scheme not in ("http", "https") and not parts.netloc:
        return uri  # a native app's private-use scheme
    raise Validation(
        said("%(uri)s: use https://, http:// on a loopback address (127.0.0.1, [::1]), or an app's own scheme", uri=repr(uri)),
        field="redirect_uris",
    )


def redirect_uri_matches(registered: list[str], uri: str) -> bool:
    """Exact string match (RFC 6749 §3.1.2.2); for a loopback redirect only
    the port may differ (RFC 8252 §7.3: a native app listens on any port)."""
    if uri in registered:
        return True
    try:
        asked = urlsplit(uri)
        asked_port = asked.port
    except ValueError:
        return False
    if asked.scheme != "http" or not asked.hostname or not _is_loopback(asked.hostname):
        return False
    for candidate in registered:
        parts = urlsplit(candidate)
        if (
            parts.scheme == "http"
            and parts.hostname == asked.hostname
            and parts.path == asked.path
            and parts.query == asked.query
            and asked_port is not None
        ):
            return True
    return False


def create_client(owner: User | None, name, redirect_uris) -> tuple[OAuthClient, str]:
    """Register an app: (client, its secret). The secret is shown once."""
    name = text(name, "name", 100, required=True)
    if isinstance(redirect_uris, str):
        redirect_uris = redirect_uris.split()
    if not isinstance(redirect_uris, (list, tuple)) or not redirect_uris:
        raise Validation(said('at least one redirect URI is required'), field="redirect_uris")
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        raise Validation(said('at most %(max_redirect_uris)s redirect URIs', max_redirect_uris=MAX_REDIRECT_URIS), field="redirect_uris")
    uris = list(dict.fromkeys(check_redirect_uri(u) for u in redirect_uris))
    secret = "fncs_" + secrets.token_urlsafe(32)
    client = OAuthClient.create(
        client_id="fnc_" + secrets.token_urlsafe(16),
        secret_digest=digest(secret),
        name=name,
        owner=owner,
        redirect_uris="\n".join(uris),
    )
    return client, secret


def find_client(client_id) -> OAuthClient | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    client = OAuthClient.select(OAuthClient, User).join(User, JOIN.LEFT_OUTER).where(OAuthClient.client_id == client_id).first()
    if client is None or client.revoked_at is not None or (client.owner is not None and not client.owner.is_active):
        return None
    return client


def secret_matches(client: OAuthClient, secret) -> bool:
    return isinstance(secret, str) and hmac.compare_digest(client.secret_digest, digest(secret))


def clients_of(owner: User) -> list[OAuthClient]:
    return list(
        OAuthClient.select().where((OAuthClient.owner == owner) & OAuthClient.revoked_at.is_null()).order_by(OAuthClient.id)
    )


def revoke_grant(token_id: int) -> None:
    """End an app's access: the access token and every refresh token issued with it."""
    now = utcnow()
    ApiToken.update(revoked_at=now).where((ApiToken.id == token_id) & ApiToken.revoked_at.is_null()).execute()
    OAuthRefresh.update(revoked_at=now).where((OAuthRefresh.token == token_id) & OAuthRefresh.revoked_at.is_null()).execute()


def delete_client(owner: User, client_pk: int) -> None:
    """Remove an app of one's own: it and every token it holds stop working."""
    with database.atomic():
        client = OAuthClient.get_or_none((OAuthClient.id == client_pk) & (OAuthClient.owner == owner))
        if client is None or client.revoked_at is not None:
            raise NotFound(said('no such app'))
        now = utcnow()
        OAuthClient.update(revoked_at=now).where(OAuthClient.id == client.id).execute()
        ApiToken.update(revoked_at=now).where((ApiToken.oauth_client_id == client.id) & ApiToken.revoked_at.is_null()).execute()
        OAuthRefresh.update(revoked_at=now).where(
            (OAuthRefresh.client == client.id) & OAuthRefresh.revoked_at.is_null()
        ).execute()


def allowed_apps(user: User) -> list[tuple[ApiToken, OAuthClient]]:
    """The apps that hold a live token of this person (one row per grant)."""
    rows = (
        ApiToken.select(ApiToken, OAuthClient)
        .join(OAuthClient, on=(ApiToken.oauth_client_id == OAuthClient.id), attr="client")
        .where((ApiToken.user == user) & ApiToken.revoked_at.is_null() & OAuthClient.revoked_at.is_null())
        .order_by(ApiToken.id.desc())
    )
    live = []
    now = utcnow()
    for token in rows:
        refresh_alive = OAuthRefresh.select().where((OAuthRefresh.token == token.id) & OAuthRefresh.revoked_at.is_null()).exists()
        if token.expires_at is None or token.expires_at > now or refresh_alive:
            live.append((token, token.client))
    return live


def revoke_app_for(user: User, token_id: int) -> None:
    token = ApiToken.get_or_none((ApiToken.id == token_id) & (ApiToken.user == user) & ApiToken.oauth_client_id.is_null(False))
    if token is None:
        raise NotFound(said('no such app access'))
    with database.atomic():
        revoke_grant(token.id)
