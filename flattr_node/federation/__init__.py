"""Federation between nodes (SPEC §6): one account, every node.

keys (the node's Ed25519 identity), peers (peering and the well-known
document), webfinger, signing (RFC 9421 / RFC 9530), remote (the home
node's remote flattr), delivery (the outbox), inbox (the host's side),
views (HTTP) and cli (`flattr-node peer ...`). docs/federation.md is the
protocol.
"""
