"""OAuth 2.0 tables: the apps people register, and the codes and refresh
tokens handed to them. Access tokens live in `api_token` beside personal
tokens (with `oauth_client_id` set), so one lookup serves both."""

from __future__ import annotations

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, TextField

from ..models import ApiToken, BaseModel, User, utcnow


class OAuthClient(BaseModel):
    """An app. Its secret is kept as a SHA-256 digest, like a token."""

    client_id = CharField(max_length=64, unique=True)
    secret_digest = CharField(max_length=64)
    name = CharField(max_length=100)
    # None: registered by the node's operator (`flattr-node oauth client create`).
    owner = ForeignKeyField(User, backref="oauth_clients", null=True, on_delete="RESTRICT")
    redirect_uris = TextField()  # one per line, matched exactly (loopback: any port)
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "oauth_client"


class OAuthCode(BaseModel):
    """An authorization code: once, within a short time, with its PKCE challenge."""

    digest = CharField(max_length=64, unique=True)
    client = ForeignKeyField(OAuthClient, on_delete="RESTRICT")
    user = ForeignKeyField(User, on_delete="RESTRICT")
    redirect_uri = CharField(max_length=2048)
    scopes = CharField(max_length=100)
    code_challenge = CharField(max_length=128)
    code_challenge_method = CharField(max_length=8)
    expires_at = DateTimeField()
    used = BooleanField(default=False)
    token = ForeignKeyField(ApiToken, null=True, on_delete="RESTRICT")  # issued with it

    class Meta:
        table_name = "oauth_code"


class OAuthRefresh(BaseModel):
    """A refresh token, tied to the access token it was issued with."""

    digest = CharField(max_length=64, unique=True)
    token = ForeignKeyField(ApiToken, on_delete="RESTRICT")
    client = ForeignKeyField(OAuthClient, on_delete="RESTRICT")
    user = ForeignKeyField(User, on_delete="RESTRICT")
    scopes = CharField(max_length=100)
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "oauth_refresh"


OAUTH_MODELS = [OAuthClient, OAuthCode, OAuthRefresh]
