"""Tables of the web dashboard: invite codes and password-reset tokens.

Created by migration 2 (schema.py); the models of migration 1 stay as they were.
"""

from __future__ import annotations

from peewee import CharField, DateTimeField, ForeignKeyField

from .models import BaseModel, User, utcnow


class Invite(BaseModel):
    """An invite code a member hands out (signup = "invite"). Single use."""

    code = CharField(max_length=32, unique=True)
    inviter = ForeignKeyField(User, backref="invites", on_delete="RESTRICT")
    created_at = DateTimeField(default=utcnow)
    used_by = ForeignKeyField(User, null=True, unique=True, backref="invited_by", on_delete="RESTRICT")
    used_at = DateTimeField(null=True)


class PasswordReset(BaseModel):
    """A password-reset token sent by e-mail: only its SHA-256 is stored;
    it works once (`used_at`) and until `expires_at`."""

    user = ForeignKeyField(User, backref="password_resets", on_delete="RESTRICT")
    digest = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)


WEB_MODELS = [Invite, PasswordReset]
