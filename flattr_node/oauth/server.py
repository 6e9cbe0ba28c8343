"""The OAuth 2.0 authorization server, built with Authlib: authorization
code with PKCE (S256 only, required), refresh tokens (rotated on use) and
revocation (RFC 7009). Authlib checks the protocol; this module only says
how codes, tokens and clients are stored."""

from __future__ import annotations

import datetime as dt

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from .. import scopes as scope_names
from ..models import ApiToken, User, utcnow
from . import clients
from .models import OAuthClient, OAuthCode, OAuthRefresh

CODE_LIFETIME = dt.timedelta(seconds=60)
ACCESS_LIFETIME = 3600  # seconds; a refresh token gets a new one
CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]


class Client(ClientMixin):
    """Authlib's view of an OAuthClient row."""

    def __init__(self, row: OAuthClient):
        self.row = row
        self.redirect_uris = row.redirect_uris.split()

    def get_client_id(self):
        return self.row.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        """The scopes asked for, if all are known; none asked is an error
        (invalid_scope): an app says what it wants."""
        asked = (scope or "").split()
        if not asked or any(s not in scope_names.SCOPES for s in asked):
            return None
        return scope_names.to_text(s for s in scope_names.SCOPES if s in asked)

    def check_redirect_uri(self, redirect_uri):
        return clients.redirect_uri_matches(self.redirect_uris, redirect_uri)

    def check_client_secret(self, client_secret):
        return clients.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in CLIENT_AUTH

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


class Grant:
    """A token as Authlib's refresh and revocation endpoints see it: an
    access token (an ApiToken row) or a refresh token (an OAuthRefresh row)."""

    def __init__(self, access: ApiToken | None = None, refresh: OAuthRefresh | None = None):
        self.access, self.refresh = access, refresh

    @property
    def token_id(self) -> int:
        return self.access.id if self.access is not None else self.refresh.token_id

    def check_client(self, client):
        client_pk = self.access.oauth_client_id if self.access is not None else self.refresh.client_id
        return client_pk == client.row.id

    def get_scope(self):
        return (self.access or self.refresh).scopes

    def get_user(self):
        return User.get_by_id((self.access or self.refresh).user_id)


class S256Challenge(CodeChallenge):
    """PKCE is required, with S256 only (RFC 7636; OAuth 2.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        if not grant.request.payload.data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256")
        if grant.request.payload.data.get("code_challenge_method", "S256") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH

    def save_authorization_code(self, code, request):
        OAuthCode.create(
            digest=clients.digest(code),
            client=request.client.row,
            user=request.user,
            redirect_uri=request.payload.redirect_uri or "",
            scopes=request.scope,
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method", "S256"),
            expires_at=utcnow() + CODE_LIFETIME,
        )

    def query_authorization_code(self, code, client):
        row = OAuthCode.get_or_none((OAuthCode.digest == clients.digest(code)) & (OAuthCode.client == client.row.id))
        if row is None:
            return None
        if row.used:
            # A code used twice may have been stolen: what it gave is taken
            # back (RFC 6749 §4.1.2).
            if row.token_id is not None:
                clients.revoke_grant(row.token_id)
            return None
        if row.expires_at <= utcnow():
            return None
        return CodeView(row)

    def delete_authorization_code(self, authorization_code):
        token = self.request.issued_token
        # Conditional: of two exchanges racing with one code, one wins.
        won = (
            OAuthCode.update(used=True, token=token.id)
            .where((OAuthCode.id == authorization_code.row.id) & (OAuthCode.used == False))  # noqa: E712
            .execute()
        )
        if not won:
            clients.revoke_grant(token.id)
            raise InvalidRequestError("the code was used already")

    def authenticate_user(self, authorization_code):
        user = User.get_by_id(authorization_code.row.user_id)
        return user if user.is_active else None


class CodeView:
    """Authlib's view of an OAuthCode row."""

    def __init__(self, row: OAuthCode):
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self):
        return self.row.redirect_uri

    def get_scope(self):
        return self.row.scopes


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: each refresh token works once

    def authenticate_refresh_token(self, refresh_token):
        row = OAuthRefresh.get_or_none(OAuthRefresh.digest == clients.digest(refresh_token))
        if row is None:
            return None
        if row.revoked_at is not None:
            clients.revoke_grant(row.token_id)  # a rotated token used again: end the grant
            return None
        return Grant(refresh=row)

    def authenticate_user(self, refresh_token):
        user = refresh_token.get_user()
        return user if user.is_active else None

    def revoke_old_credential(self, refresh_token):
        clients.revoke_grant(refresh_token.token_id)


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH

    def query_token(self, token_string, token_type_hint):
        if not isinstance(token_string, str):
            return None
        found = ApiToken.get_or_none((ApiToken.digest == clients.digest(token_string)) & ApiToken.oauth_client_id.is_null(False))
        if found is not None:
            return Grant(access=found)
        refresh = OAuthRefresh.get_or_none(OAuthRefresh.digest == clients.digest(token_string))
        return Grant(refresh=refresh) if refresh is not None else None

    def revoke_token(self, token, request):
        clients.revoke_grant(token.token_id)


def _query_client(client_id):
    row = clients.find_client(client_id)
    return Client(row) if row is not None else None


def _save_token(token: dict, request) -> None:
    client = request.client
    now = utcnow()
    access = ApiToken.create(
        user=request.user,
        name=client.row.name,
        digest=clients.digest(token["access_token"]),
        scopes=token.get("scope", ""),
        oauth_client_id=client.row.id,
        expires_at=now + dt.timedelta(seconds=token["expires_in"]),
    )
    if token.get("refresh_token"):
        OAuthRefresh.create(
            digest=clients.digest(token["refresh_token"]),
            token=access,
            client=client.row,
            user=request.user,
            scopes=token.get("scope", ""),
        )
    request.issued_token = access


def make_server(app) -> AuthorizationServer:
    app.config.setdefault("OAUTH2_ACCESS_TOKEN_GENERATOR", lambda *a, **k: "fno_" + _random())
    app.config.setdefault("OAUTH2_REFRESH_TOKEN_GENERATOR", lambda *a, **k: "fnr_" + _random())
    app.config.setdefault("OAUTH2_TOKEN_EXPIRES_IN", {"authorization_code": ACCESS_LIFETIME, "refresh_token": ACCESS_LIFETIME})
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(scope_names.SCOPES))
    server = AuthorizationServer(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(AuthorizationCodeGrant, [S256Challenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_endpoint(Revocation)
    return server


def _random() -> str:
    import secrets

    return secrets.token_urlsafe(32)
