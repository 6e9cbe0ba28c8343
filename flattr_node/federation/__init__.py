"""Federation between nodes (SPEC §6): one account, every node.

keys (the node's Ed25519 identity), peers (peering and the well-known
document), webfinger, signing (RFC 9421 / RFC 9530), remote (the home
node's remote flattr), delivery (the outbox), inbox (the host's side),
views (HTTP) and cli (`flattr-node peer ...`). docs/federation.md is the
protocol.
"""


def confirm_settlement(reference: str, amount: int) -> bool:
    """For the bank import: a credit of `amount` cents naming `reference`.
    False when it is not a statement owed to this node (so the import tries
    deposits); True when it confirmed one (pending revenue became revenue).
    Raises a FlattrError (to the review list) when the amount is not the
    statement's total or the statement was already confirmed: a second
    payment is the operator's to look at."""
    from ..errors import FlattrError, Validation
    from ..i18n import said
    from .settlement import confirm_settlement as confirm
    from .settlement import is_receivable

    try:
        if not is_receivable(reference):
            return False
    except FlattrError:
        return False
    settlement, new = confirm(reference, amount)
    if not new:
        raise Validation(said('%(reference)s was already confirmed', reference=settlement.reference))
    return True
