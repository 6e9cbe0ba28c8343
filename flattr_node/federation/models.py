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

from peewee import (
    SQL,
    BigIntegerField,
    BooleanField,
    CharField,
    Check,
    CompositeKey,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from ..models import BaseModel, Flattr, Thing, User, utcnow


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
    # Where this node pays what it owes the peer (SPEC §7), as the peer's
    # well-known document gave them at `peer add` / `peer sync` (migration 21);
    # checked with schwifty when a payout export takes a settlement.
    bank_iban = CharField(max_length=100, default="")
    bank_bic = CharField(max_length=100, default="")
    bank_account_name = CharField(max_length=200, default="")

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
    settled_by = CharField(max_length=25, null=True)  # the reference of the statement that paid it

    class Meta:
        indexes = ((("peer", "remote_id"), True), (("thing", "period"), False))


class SeenNonce(BaseModel):
    peer = ForeignKeyField(Peer, on_delete="CASCADE")
    nonce = CharField(max_length=100)
    seen_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("peer", "nonce"), True),)


class PeerGave(BaseModel):
    """R8 across nodes: the host's answer, stored before the close plans,
    whether a remote owner (a proxy person here) gave in a period. No row:
    no answer (the owner counts as not giving)."""

    period = CharField(max_length=7)
    user = ForeignKeyField(User, on_delete="RESTRICT")
    gave = BooleanField()
    reason = CharField(max_length=200, default="")
    answered_at = DateTimeField(default=utcnow)

    class Meta:
        primary_key = CompositeKey("period", "user")


class Settlement(BaseModel):
    """What one node owes another for one period (SPEC §6), on each side.

    direction "payable" (this node is the home node and owes the peer):
      unsent -> sent (the peer accepted the statement) -> paid (our operator
      paid it by bank transfer), or refused (the peer refused the statement).
    direction "receivable" (this node is the host): pending -> confirmed
      (the money arrived: pending revenue became revenue).
    """

    peer = ForeignKeyField(Peer, on_delete="RESTRICT")
    period = CharField(max_length=7)
    direction = CharField(max_length=10)
    reference = CharField(max_length=25)  # ISO 11649, compact: RFkk + up to 21
    total = BigIntegerField(constraints=[Check("total > 0")])
    lines = TextField()  # the statement's lines, JSON
    status = CharField(max_length=10)
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    settled_at = DateTimeField(null=True)
    # A payable one: the payout export (bank.models.PayoutExport id) that holds
    # its transfer; NULL: not exported. A plain integer, not a foreign key:
    # migration 21 runs before the bank's tables exist.
    exported_in = IntegerField(null=True)

    class Meta:
        indexes = ((("peer", "direction", "reference"), True), (("peer", "direction", "period"), True))
        constraints = [
            SQL("CHECK (direction IN ('payable', 'receivable'))"),
            SQL("CHECK (status IN ('unsent', 'sent', 'refused', 'paid', 'pending', 'confirmed'))"),
        ]


FEDERATION_MODELS = [NodeKey, Peer, RemoteThing, Outbox, InboxFlattr, SeenNonce, PeerGave, Settlement]
