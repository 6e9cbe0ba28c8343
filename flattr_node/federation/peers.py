"""Peering (SPEC §6): the operator's decision to federate with a node.

A peer is added by its base URL; its well-known document is fetched, its
currency must be this node's, and its key is pinned (a later change of key
needs `peer add` again). Federation works only when both operators added
each other: a node accepts signed requests only from its own peers.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .. import ledger
from ..config import Config
from ..db import database, execute
from ..errors import FlattrError, NotFound, Validation
from ..i18n import said
from ..models import Account, utcnow
from ..services.validate import is_utf8
from . import keys, outbound
from .models import Peer

PROTOCOL = "flattr-node-federation/1"


def normalize_base(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise Validation(said("%(url)s is not a node's base URL (http(s)://host[:port][/path])", url=repr(url)), field="url")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path}"


def document(cfg: Config) -> dict:
    """GET /.well-known/flattr-node."""
    base = cfg.base_url.rstrip("/")
    doc = {
        "protocol": PROTOCOL,
        "base_url": base,
        "currency": cfg.currency,
        "keys": [keys.public_jwk(keys.ensure_key())],
        "inbox": f"{base}/federation/inbox",
        "gave": f"{base}/federation/gave",
        "statements": f"{base}/federation/statements",
        "settlements": f"{base}/federation/settlements",
        "webfinger": f"{base}/.well-known/webfinger",
    }
    for key in ("bank_iban", "bank_bic", "bank_account_name"):
        if getattr(cfg, key):
            doc[key] = getattr(cfg, key)
    return doc


def payable_code(peer_id: int) -> str:
    return f"peer:{peer_id}:payable"


def receivable_code(peer_id: int) -> str:
    return f"peer:{peer_id}:receivable"


BANK_KEYS = ("bank_iban", "bank_bic", "bank_account_name")


def _fetch_document(cfg: Config, base: str) -> tuple[dict, dict]:
    """The peer's well-known document, checked: (document, its Ed25519 JWK)."""
    response = outbound.fetch(cfg, "GET", f"{base}/.well-known/flattr-node")
    if response.status_code != 200:
        raise outbound.PeerUnreachable(said('%(base)s is not a flattr node (GET /.well-known/flattr-node answered %(status_code)s)', base=base, status_code=response.status_code))
    doc = outbound.json_of(response)
    if doc.get("protocol") != PROTOCOL:
        raise FlattrError(said('%(base)s speaks %(value)s, not %(protocol)s', base=base, value=repr(doc.get('protocol')), protocol=PROTOCOL))
    if normalize_base(str(doc.get("base_url", ""))) != base:
        raise FlattrError(said('%(base)s says its base URL is %(value)s: add it by that URL', base=base, value=repr(doc.get('base_url'))))
    if doc.get("currency") != cfg.currency:
        raise FlattrError(said('%(base)s counts in %(value)s, this node in %(currency)s: peers must share one currency', base=base, value=doc.get('currency'), currency=cfg.currency))
    jwk = next((k for k in doc.get("keys") or [] if isinstance(k, dict) and k.get("crv") == "Ed25519"), None)
    if jwk is None or not isinstance(jwk.get("x"), str):
        raise FlattrError(said('%(base)s publishes no Ed25519 key', base=base))
    try:
        keys.load_public(jwk["x"])
    except ValueError:
        raise FlattrError(said('%(base)s publishes a malformed Ed25519 key', base=base)) from None
    return doc, jwk


def bank_details(doc: dict) -> dict[str, str]:
    """The bank keys of a peer's document as given, kept as text when they
    are printable text (the payout export checks them with schwifty); what
    is missing, or no text, is kept as ""."""
    details = {}
    for key, size in zip(BANK_KEYS, (Peer.bank_iban.max_length, Peer.bank_bic.max_length, Peer.bank_account_name.max_length), strict=True):
        value = doc.get(key)
        ok = isinstance(value, str) and is_utf8(value) and value.isprintable() and len(value.strip()) <= size
        details[key] = value.strip() if ok else ""
    return details


def add_peer(cfg: Config, url: str, credit_limit: int | None = None) -> Peer:
    base = normalize_base(url)
    if base == normalize_base(cfg.base_url):
        raise Validation(said('a node cannot be its own peer'), field="url")
    if credit_limit is not None and credit_limit < 0:
        raise Validation(said('the credit limit must not be negative'), field="credit_limit")
    doc, jwk = _fetch_document(cfg, base)
    kid = keys.thumbprint(jwk["x"])
    inbox = str(doc.get("inbox") or f"{base}/federation/inbox")
    if not inbox.startswith(base + "/"):
        raise FlattrError(said('%(base)s names an inbox outside itself: %(inbox)s', base=base, inbox=repr(inbox)))
    with database.atomic():
        peer = Peer.get_or_none(Peer.base_url == base)
        fields = dict(
            key_id=kid, public_key=jwk["x"], inbox_url=inbox, currency=cfg.currency, credit_limit=credit_limit, removed_at=None,
            **bank_details(doc),
        )  # fmt: skip
        if peer is None:
            peer = Peer.create(base_url=base, **fields)
        else:
            Peer.update(**fields).where(Peer.id == peer.id).execute()
            peer = Peer.get_by_id(peer.id)
        # A receivable is a claim on the world outside this node: like
        # node:external it may go negative (CHECK in models.Account).
        for code, kind in ((payable_code(peer.id), "payable"), (receivable_code(peer.id), "external")):
            Account.insert(code=code, kind=kind).on_conflict_ignore().execute()
    return peer


def refresh_bank_details(cfg: Config, peer: Peer) -> str | None:
    """`peer sync`: read the peer's bank details again from its document,
    which must still publish the key pinned at `peer add`. Returns a line
    saying what changed, or None when nothing did."""
    doc, jwk = _fetch_document(cfg, peer.base_url)
    if jwk["x"] != peer.public_key:
        raise FlattrError(said("%(base)s publishes another key than the one pinned: bank details not read (`peer add` again to trust it)", base=peer.base_url))
    details = bank_details(doc)
    if details == {key: getattr(peer, key) for key in BANK_KEYS}:
        return None
    Peer.update(**details).where(Peer.id == peer.id).execute()
    if not details["bank_iban"]:
        return f"{peer.base_url} publishes no bank details now"
    account = " ".join(v for v in (details["bank_iban"], details["bank_bic"]) if v)
    return f"{peer.base_url} bank details now: {account} ({details['bank_account_name']})"


def list_peers(include_removed: bool = False) -> list[Peer]:
    query = Peer.select().order_by(Peer.base_url)
    if not include_removed:
        query = query.where(Peer.removed_at.is_null())
    return list(query)


def remove_peer(url: str) -> Peer:
    base = normalize_base(url)
    peer = Peer.get_or_none((Peer.base_url == base) & Peer.removed_at.is_null())
    if peer is None:
        raise NotFound(said('%(base)s is not a peer of this node', base=base))
    Peer.update(removed_at=utcnow()).where(Peer.id == peer.id).execute()
    return peer


def active_peer_for(url: str) -> Peer | None:
    """The active peer whose base URL `url` starts with."""
    for peer in list_peers():
        if url == peer.base_url or url.startswith(peer.base_url + "/"):
            return peer
    return None


def owed_by(peer: Peer) -> int:
    """What the peer owes this node and has not paid. The receivable is a
    claim on the outside world, so it goes negative by what is owed."""
    return -ledger_balance(receivable_code(peer.id))


def balances(peer: Peer) -> dict:
    return {"payable": ledger_balance(payable_code(peer.id)), "receivable": ledger_balance(receivable_code(peer.id))}


def ledger_balance(code: str) -> int:
    row = execute("SELECT balance FROM account WHERE code = ?", (code,)).fetchone()
    return row[0] if row else 0


__all__ = ["add_peer", "list_peers", "remove_peer", "document", "ledger"]
