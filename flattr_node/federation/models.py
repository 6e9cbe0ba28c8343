"""Tables of federation (SPEC §6). Created by migration 20 (schema.py).

* NodeKey: this node's Ed25519 signing key (one row).
* Peer: a node the operator chose to federate with; its key pinned at add.
* RemoteThing: a thing hosted on a peer, as the home node knows it. It is
  also an ordinary `thing` row owned by a *proxy person* (`user.username` =
  `name@host`, suspended: nobody signs in as it) so that R3, R6, R7 and the
  month close treat remote flattrs exactly like local ones; the proxy's
  revenue account is what this node owes the peer for that owner.
* Outbox: a remote flattr waiting to be delivered, written in the flattr's
  own transaction (the transactional outbox).
* InboxFlattr: a remote flattr delivered to this node (the host), unique per
  (peer, its id on the home node): the host's de-duplication.
* SeenNonce: signature nonces already accepted, to refuse replays.
"""

from __future__ import annotations

from peewee import SQL, BigIntegerField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from ..models import BaseModel, Flattr, Thing, utcnow


class NodeKey(BaseModel):
    private_pem = TextField()
    created_at = DateTimeField(default=utcnow)


class Peer(BaseModel):
    base_url = CharField(max_length=2048, unique=True)
    key_id = CharField(max_length=200)
    public_key = CharField(max_length=100)  # the JWK's "x": base64url of the raw key
    inbox_url = CharField(max_length=2048)
    currency = CharField(max_length=3)
    credit_limit = BigIntegerField(null=True)  # cents; None: no limit
    added_at = DateTimeField(default=utcnow)
    removed_at = DateTimeField(null=True)  # kept for the history of its flattrs
    refusal = TextField(default="")  # why it last refused our flattrs (its credit limit); "" when it takes them

    class Meta:
        constraints = [SQL("CHECK (credit_limit IS NULL OR credit_limit >= 0)")]


class RemoteThing(BaseModel):
    thing = ForeignKeyField(Thing, unique=True, on_delete="RESTRICT")
    peer = ForeignKeyField(Peer, on_delete="RESTRICT")
    remote_id = IntegerField()
    owner_name = CharField(max_length=40)  # the owner's username on the peer
    page_url = CharField(max_length=2048, default="")  # the blog post, as its host describes it

    class Meta:
        indexes = ((("peer", "remote_id"), True),)


class Outbox(BaseModel):
    flattr = ForeignKeyField(Flattr, unique=True, on_delete="RESTRICT")
    peer = ForeignKeyField(Peer, on_delete="RESTRICT")
    status = CharField(max_length=10, default="pending")  # pending | delivered | refused
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    delivered_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)
        constraints = [SQL("CHECK (status IN ('pending', 'delivered', 'refused'))")]


class InboxFlattr(BaseModel):
    peer = ForeignKeyField(Peer, on_delete="RESTRICT")
    remote_id = CharField(max_length=2048)  # the flattr's id (a URI) on the home node
    thing = ForeignKeyField(Thing, on_delete="RESTRICT")
    giver = CharField(max_length=300)  # acct:name@home
    period = CharField(max_length=7)
    created_at = DateTimeField()  # when the home node recorded it
    received_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("peer", "remote_id"), True), (("thing", "period"), False))


class SeenNonce(BaseModel):
    peer = ForeignKeyField(Peer, on_delete="CASCADE")
    nonce = CharField(max_length=100)
    seen_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("peer", "nonce"), True),)


FEDERATION_MODELS = [NodeKey, Peer, RemoteThing, Outbox, InboxFlattr, SeenNonce]
