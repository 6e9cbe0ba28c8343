"""RFC 9421 HTTP Message Signatures (`ed25519`) with an RFC 9530
`Content-Digest`, through the `http-message-signatures` library.

Every server-to-server request is signed over `@method`, `@target-uri`,
`content-type` and `content-digest`, with `created`, `keyid`, `nonce` and the
tag `flattr-node`. A receiver refuses a request that is unsigned or badly
signed (401), whose `created` is more than five minutes from its clock
(401), whose nonce it has seen (401), or whose key is not a mutual peer's
(403). The nonce is stored in the same transaction as whatever the request
changes, so a replay changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

import requests
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from ..config import Config
from ..db import execute
from ..errors import FlattrError, Forbidden, Unauthorized
from ..models import utcnow
from . import keys, outbound
from .models import Peer, SeenNonce

TAG = "flattr-node"
LABEL = "sig1"
COVERED = ("@method", "@target-uri", "content-type", "content-digest")
WINDOW = dt.timedelta(minutes=5)
MAX_BODY = 64 * 1024


def sign(cfg: Config, method: str, url: str, payload: dict, now: dt.datetime | None = None) -> requests.PreparedRequest:
    """A prepared request carrying `payload` as JSON, signed with the node key."""
    key = keys.ensure_key()
    kid = keys.public_jwk(key)["kid"]
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    request = requests.Request(method, url, data=body, headers={"Content-Type": "application/json", "Accept": "application/json"}).prepare()
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(public_keys={}, private_keys={kid: key}))
    signer.sign(
        request, key_id=kid, label=LABEL, tag=TAG, nonce=secrets.token_urlsafe(18), body=body,
        created=(now or dt.datetime.now(dt.UTC)), covered_component_ids=COVERED,
    )  # fmt: skip
    return request


def send(cfg: Config, method: str, url: str, payload: dict, session: requests.Session | None = None) -> requests.Response:
    return outbound.fetch(cfg, method, url, prepared=sign(cfg, method, url, payload), session=session)


@dataclass
class Message:
    """What the verifier reads of an incoming request."""

    method: str
    url: str
    headers: dict


class _PeerKeys(MappingKeyResolver):
    pass


def verify(method: str, url: str, headers: dict, body: bytes, max_body: int = MAX_BODY) -> tuple[Peer, str]:
    """The mutual peer that signed this request and the signature's nonce;
    raises Unauthorized or Forbidden. The caller stores the nonce (remember_nonce)
    in the transaction that acts on the request."""
    if len(body) > max_body:
        raise FlattrError(f"the body is larger than {max_body} bytes")
    lower = {k.lower(): v for k, v in headers.items()}
    if "signature" not in lower or "signature-input" not in lower:
        raise Unauthorized("this request is not signed (RFC 9421 Signature and Signature-Input are required)")
    peers = {p.key_id: p for p in Peer.select().where(Peer.removed_at.is_null())}
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=_PeerKeys(public_keys={kid: keys.load_public(p.public_key) for kid, p in peers.items()}, private_keys={}),
    )
    verifier.max_clock_skew = WINDOW
    message = Message(method=method, url=url, headers=headers)
    try:
        results = verifier.verify(message, max_age=dt.timedelta(0), expect_tag=TAG, require_components=COVERED, body=body)
    except InvalidSignature as e:
        text = str(e)
        if "Unable to resolve verification key" in text:
            raise Forbidden("this request is signed by a node that is not a peer of this node") from None
        raise Unauthorized(f"bad signature: {text}") from None
    except HTTPMessageSignaturesException as e:
        raise Unauthorized(f"bad signature: {e}") from None
    result = results[0]
    if not result.nonce:
        raise Unauthorized("the signature has no nonce")
    return peers[result.parameters["keyid"]], result.nonce


def remember_nonce(peer: Peer, nonce: str) -> None:
    """Inside the write transaction: refuse a nonce seen before (a replay)."""
    row = execute(
        "INSERT INTO seen_nonce (peer_id, nonce, seen_at) VALUES (?, ?, ?) ON CONFLICT (peer_id, nonce) DO NOTHING RETURNING id",
        (peer.id, nonce[:100], SeenNonce.seen_at.db_value(utcnow())),
    ).fetchone()
    if row is None:
        raise Unauthorized("this signed request was already received (replay refused)")
    SeenNonce.delete().where(SeenNonce.seen_at < utcnow() - 3 * WINDOW).execute()
