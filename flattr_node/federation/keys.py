"""This node's Ed25519 key: made once, kept in the database (table
`node_key`) so that a PostgreSQL node or a restored backup keeps its identity;
published as a JWK (RFC 8037) whose key id is its RFC 7638 thumbprint."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..db import database
from .models import NodeKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ensure_key() -> Ed25519PrivateKey:
    """The node's key, made on first use (init, serve)."""
    row = NodeKey.select().order_by(NodeKey.id).first()
    if row is None:
        with database.atomic():
            row = make_key()
    return serialization.load_pem_private_key(row.private_pem.encode(), password=None)


def make_key() -> NodeKey:
    """The node's key row, made if there is none, in the caller's transaction."""
    row = NodeKey.select().order_by(NodeKey.id).first()
    if row is None:
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        row = NodeKey.create(private_pem=pem.decode())
    return row


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(x: str) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(key: Ed25519PrivateKey) -> dict:
    x = b64url(raw_public(key.public_key()))
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint(x), "alg": "EdDSA", "use": "sig"}


def load_public(x: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(b64url_decode(x))
