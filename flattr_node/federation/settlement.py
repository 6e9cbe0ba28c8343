"""Settlement between nodes (SPEC §6): statements, pending revenue, and the
bank transfer that makes it real.

Home node (owes):
  after its close, `make_statements` moves each peer's remote shares (less
  the home node's fee, which the close already took) from the proxy owners'
  accounts into `peer:<id>:payable`, one transaction per peer and period
  (key `settle:<P>:peer:<id>:payable`), and keeps the statement: every line,
  the total and an ISO 11649 reference. `send_statements` posts it, signed;
  `payout export` puts each sent statement into the pain.001 file once
  (`export_owed`, to the bank details the peer publishes); `settlement paid
  REF`, or the bank import's debit of that transfer, records the payment
  once (payable -> node:external).
Host node (is owed):
  `receive` checks every line against the flattrs delivered to it and
  refuses the whole statement on any unknown, repeated or inconsistent line
  (naming every such line: docs/decisions.md);
  then credits each owner's `pending_revenue` against `peer:<id>:receivable`
  (key `settle:in:<peer>:<REF>`). `confirm_settlement(REF, amount)` (the
  CLI's `settlement confirm`, or a bank import) turns it into revenue,
  exactly once (key `settle:in:<peer>:<REF>:confirm`).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

from .. import ledger, periods
from ..config import Config
from ..db import database, execute, locked
from ..errors import FlattrError, NotFound, Validation
from ..i18n import said
from ..models import Account, Thing, User, utcnow
from . import delivery, outbound, signing
from .models import InboxFlattr, Peer, Settlement
from .peers import payable_code, receivable_code

MAX_LINES = 20000
MAX_STATEMENT_BODY = 4 * 1024 * 1024
MAX_LISTED = 20  # bad lines named in a refusal


def make_reference(period: str, peer: Peer, own_base: str) -> str:
    """A creditor reference unique per (paying node, peer, period)."""
    digest = hashlib.sha256(f"{own_base}|{peer.base_url}|{period}".encode()).hexdigest().upper()
    body = period.replace("-", "") + digest[:15]
    return "RF" + mod_97_10.calc_check_digits(body + "RF") + body


def clean_reference(text: str) -> str:
    try:
        return iso11649.validate(str(text))
    except iso11649.ValidationError:
        raise Validation(said('%(text)s is not an ISO 11649 creditor reference (RF…)', text=repr(text)), field="reference") from None


# --- the home node ---------------------------------------------------------------------


def pending_revenue_code(user_id: int) -> str:
    return f"user:{user_id}:pending_revenue"


def make_statements(cfg: Config, period: str) -> list[Settlement]:
    """After `period` is closed: one payable settlement per peer owed, made
    in one database transaction with one ledger transaction per peer,
    written set-based (ledger.post_values): a month with thousands of
    remote flattrs costs a few statements, not one per flattr or owner."""
    from ..models import Period

    state = Period.get_or_none(Period.name == period)
    if state is None or state.status != "closed":
        return []
    # (peer, flattr, share, fee, id on the peer, owner's name there, the
    # proxy owner's revenue account, status) of every remote flattr of the
    # period. From the remote things to their flattrs (index thing_id,
    # period): on SQLite, CROSS JOIN keeps that order, 3 times faster than
    # probing every flattr of the month. Which ones counted is left to
    # Python: right after the close, PostgreSQL's statistics still say no
    # flattr is counted, and a filter on it made the planner compare every
    # flattr with every remote thing (2 s for 50,000 flattrs).
    rows = execute(
        "SELECT r.peer_id, f.id, f.share, f.fee, r.remote_id, r.owner_name, a.id, f.status FROM remote_thing r "
        "CROSS JOIN flattr f JOIN account a ON a.user_id = f.owner_id AND a.kind = 'revenue' "
        "WHERE f.thing_id = r.thing_id AND f.period = ? ORDER BY f.id",
        (period,),
    ).fetchall()
    by_peer: dict[int, list] = defaultdict(list)
    for *row, status in rows:
        if status == "counted" and row[2] > 0:
            by_peer[row[0]].append(row)
    mine = (Settlement.direction == "payable") & (Settlement.period == period)
    if not by_peer:  # no remote share this period: nothing to write, so no write transaction (every tick asks)
        return list(Settlement.select().where(mine).order_by(Settlement.id))
    with database.atomic():
        done = {peer_id for (peer_id,) in Settlement.select(Settlement.peer).where(mine).tuples()}
        peers = {p.id: p for p in Peer.select().where(Peer.id.in_(list(by_peer)))}
        payables = dict(Account.select(Account.code, Account.id).where(Account.code.in_([payable_code(i) for i in by_peer])).tuples())
        postings, settlements = [], []
        for peer_id, lines in by_peer.items():
            total = sum(share - fee for _, _, share, fee, *_ in lines)
            if peer_id in done or total <= 0:
                continue
            peer = peers[peer_id]
            per_owner: dict[int, int] = defaultdict(int)
            for _, _, share, fee, _, _, revenue in lines:
                per_owner[revenue] += share - fee
            moves = [(revenue, -amount) for revenue, amount in per_owner.items()] + [(payables[payable_code(peer_id)], total)]
            postings.append((f"settle:{period}:peer:{peer_id}:payable", moves, f"owed to {peer.base_url} for {period}"))
            doc_lines = [
                {"id": delivery.flattr_uri(cfg, fid), "object": f"{peer.base_url}/things/{rid}", "owner": owner_name,
                 "share": share, "fee": fee, "amount": share - fee}
                for _, fid, share, fee, rid, owner_name, _ in lines
            ]  # fmt: skip
            reference = make_reference(period, peer, cfg.base_url.rstrip("/"))
            settlements.append(
                {"peer": peer_id, "period": period, "direction": "payable", "reference": reference, "total": total,
                 "lines": json.dumps(doc_lines), "status": "unsent"}
            )  # fmt: skip
        if postings:
            ledger.post_values("settlement", postings)
            Settlement.insert_many(settlements).execute()
    return list(Settlement.select().where(mine).order_by(Settlement.id))


def statement_of(cfg: Config, s: Settlement) -> dict:
    return {
        "type": "Statement",
        "from": cfg.base_url.rstrip("/"),
        "period": s.period,
        "currency": cfg.currency,
        "reference": s.reference,
        "total": s.total,
        "lines": json.loads(s.lines),
    }


def send_statements(cfg: Config) -> dict:
    counts = {"sent": 0, "waiting": 0, "refused": 0}
    for s in Settlement.select().join(Peer).where((Settlement.status == "unsent") & Peer.removed_at.is_null()):
        try:
            response = signing.send(cfg, "POST", f"{s.peer.base_url}/federation/statements", statement_of(cfg, s))
            answer = outbound.json_of(response)
        except outbound.PeerUnreachable as e:
            Settlement.update(last_error=e.description[:500]).where(Settlement.id == s.id).execute()
            counts["waiting"] += 1
            continue
        if response.status_code in (200, 202):
            Settlement.update(status="sent", last_error="").where(Settlement.id == s.id).execute()
            counts["sent"] += 1
        elif response.status_code in (409, 422):
            Settlement.update(status="refused", last_error=str(answer.get("error_description", ""))[:4000]).where(Settlement.id == s.id).execute()
            counts["refused"] += 1
        else:
            Settlement.update(last_error=f"{response.status_code}: {answer.get('error_description', '')}"[:500]).where(Settlement.id == s.id).execute()
            counts["waiting"] += 1
    return counts


def settle_after_close(cfg: Config) -> dict:
    """Statements for every closed period with remote shares, then send them."""
    from ..models import Period

    for (name,) in Period.select(Period.name).where(Period.status == "closed").order_by(Period.name.desc()).limit(3).tuples():
        make_statements(cfg, name)
    return send_statements(cfg)


def mark_paid(reference: str, amount: int | None = None) -> tuple[Settlement, bool]:
    """The home operator paid a statement by bank transfer (`settlement paid`,
    or a bank import's debit with the amount it saw). Exactly once; returns
    (settlement, whether it was marked now). An unknown reference is
    NotFound; an amount other than the total is refused."""
    ref = clean_reference(reference)
    with database.atomic():
        s = locked(Settlement.select().where((Settlement.reference == ref) & (Settlement.direction == "payable"))).get_or_none()
        if s is None:
            raise NotFound(said('no statement this node owes has the reference %(ref)s', ref=iso11649.format(ref)))
        if amount is not None and amount != s.total:
            raise Validation(said('%(ref)s is for %(total)s cents, not %(amount)s', ref=iso11649.format(ref), total=s.total, amount=amount))
        if s.status == "paid":
            return s, False
        payable = Account.get(Account.code == payable_code(s.peer_id))
        ledger.post(f"settle:out:{s.peer_id}:{ref}:paid", "settlement", [(payable.id, -s.total), (ledger.node_account("external").id, s.total)])
        Settlement.update(status="paid", settled_at=utcnow()).where(Settlement.id == s.id).execute()
    return Settlement.get_by_id(s.id), True


def peer_account(peer: Peer) -> dict | str:
    """The peer's bank account as a transfer takes it (iban, name, bic),
    checked by schwifty as people's payout accounts are; or why not."""
    from ..bank.accounts import AccountError, check_bic, check_iban, check_name

    checks = [("iban", "bank_iban", check_iban), ("name", "bank_account_name", check_name)]
    if peer.bank_bic:
        checks.append(("bic", "bank_bic", check_bic))
    account = {}
    for field, key, check in checks:
        value = getattr(peer, key)
        if not value:
            return f"{peer.base_url} publishes no {key}"
        try:
            account[field] = check(value)
        except AccountError as e:
            return f"{peer.base_url}: {key} {e}"
    return account


def export_owed(cfg: Config, export_id: int):
    """A source of the payout export (bank.payouts.EXPORT_SOURCES): every
    statement this node owes that its peer accepted ("sent") and nobody has
    paid or exported yet, claimed for `export_id`, as a transfer to the
    peer's bank account with the reference as EndToEndId and remittance.
    A peer whose bank details schwifty refuses is left out, with a line
    saying why (it waits for the next export)."""
    from ..bank.payouts import Transfer
    from ..money import format_amount

    owed = (
        Settlement.select(Settlement, Peer)
        .join(Peer)
        .where((Settlement.direction == "payable") & (Settlement.status == "sent") & Settlement.exported_in.is_null())
        .order_by(Settlement.id)
    )
    transfers, left_out, taken = [], [], []
    for s in locked(owed):
        account = peer_account(s.peer)
        if isinstance(account, str):
            left_out.append(
                f"settlement {iso11649.format(s.reference)} ({format_amount(s.total, cfg.currency)} to {s.peer.base_url} for {s.period}) "
                f"left out: {account}; it waits for an export after `peer sync` reads valid bank details"
            )
            continue
        transfers.append(Transfer(amount=s.total, end_to_end_id=s.reference, description=s.reference, **account))
        taken.append(s.id)
    if taken:
        Settlement.update(exported_in=export_id).where(Settlement.id.in_(taken) & Settlement.exported_in.is_null()).execute()
    return transfers, left_out


# --- the host node -----------------------------------------------------------------------------


def _check_lines(cfg: Config, peer: Peer, data) -> tuple[str, str, int, list, dict[int, int]]:
    if not isinstance(data, dict) or data.get("type") != "Statement":
        raise Validation(said('the body must be a JSON object of type Statement'))
    period, currency, total, lines = data.get("period"), data.get("currency"), data.get("total"), data.get("lines")
    if not isinstance(period, str) or not periods.is_valid(period):
        raise Validation(said('period must be YYYY-MM'))
    if currency != cfg.currency:
        raise Validation(said('this node counts in %(currency)s, not %(currency2)s', currency=cfg.currency, currency2=repr(currency)))
    reference = clean_reference(data.get("reference", ""))
    if type(total) is not int or total <= 0:
        raise Validation(said('total must be a positive whole number of cents'))
    if not isinstance(lines, list) or not 0 < len(lines) <= MAX_LINES:
        raise Validation(said('lines must be a list of 1 to %(max_lines)s lines', max_lines=MAX_LINES))
    ids = [line.get("id") if isinstance(line, dict) else None for line in lines]
    if len(set(map(str, ids))) != len(ids):
        raise Validation(said('a flattr appears twice in the statement'))
    delivered = {
        row.remote_id: row
        for row in InboxFlattr.select(InboxFlattr, Thing.id, Thing.owner)
        .join(Thing)
        .where((InboxFlattr.peer == peer) & InboxFlattr.remote_id.in_([i for i in ids if isinstance(i, str)]))
    }
    base = cfg.base_url.rstrip("/")
    per_owner: dict[int, int] = defaultdict(int)
    bad: list[str] = []  # every line in error, so that the sender's operator sees them all at once
    for n, line in enumerate(lines, 1):
        problem = _line_problem(line, delivered, period, reference, base)
        if problem:
            bad.append(f"line {n}: {problem}")
        elif not bad:
            per_owner[delivered[line["id"]].thing.owner_id] += line["amount"]
    if bad:
        more = f" (and {len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ""
        raise Validation(f"{len(bad)} of {len(lines)} lines refused, so the whole statement is: " + "; ".join(bad[:MAX_LISTED]) + more)
    if sum(per_owner.values()) != total:
        raise Validation(said('the lines add up to %(value)s, not the total %(total)s', value=sum(per_owner.values()), total=total))
    return period, reference, total, lines, per_owner


def _line_problem(line, delivered: dict, period: str, reference: str, base: str) -> str:
    """What is wrong with one statement line ("" when nothing)."""
    if not isinstance(line, dict):
        return "not an object"
    share, fee, amount = line.get("share"), line.get("fee"), line.get("amount")
    if not all(type(v) is int for v in (share, fee, amount)) or not (0 <= fee <= share and amount == share - fee):
        return "share, fee and amount must be whole cents with 0 <= fee <= share and amount = share - fee"
    got = delivered.get(line["id"]) if isinstance(line.get("id"), str) else None
    if got is None:
        return f"{line.get('id')!r} was never delivered to this node"
    if got.period != period or line.get("object") != f"{base}/things/{got.thing_id}":
        return f"{line['id']} was delivered for another period or thing"
    if got.settled_by and got.settled_by != reference:
        return f"{line['id']} was already settled by {got.settled_by}"
    return ""


def receive(cfg: Config, method: str, url: str, headers: dict, body: bytes, data) -> tuple[int, dict]:
    """POST /federation/statements: check every line, then credit pending revenue."""
    peer, nonce = signing.verify(method, url, headers, body, MAX_STATEMENT_BODY)
    period, reference, total, lines, per_owner = _check_lines(cfg, peer, data)
    with database.atomic():
        signing.remember_nonce(peer, nonce)
        existing = Settlement.get_or_none((Settlement.peer == peer) & (Settlement.direction == "receivable") & (Settlement.period == period))
        if existing is not None:
            if existing.reference == reference and existing.total == total:
                return 200, {"status": "duplicate", "reference": reference}
            raise FlattrError(said('a statement for %(period)s was already accepted from this node (%(reference)s)', period=period, reference=existing.reference))
        receivable = Account.get(Account.code == receivable_code(peer.id))
        moves = [(receivable.id, -total)]
        for owner_id, amount in per_owner.items():
            if amount:
                Account.insert(code=pending_revenue_code(owner_id), kind="pending_revenue", user=owner_id).on_conflict_ignore().execute()
                moves.append((Account.get(Account.code == pending_revenue_code(owner_id)).id, amount))
        ledger.post(f"settle:in:{peer.id}:{reference}", "settlement", moves, memo=f"statement of {peer.base_url} for {period}")
        Settlement.create(peer=peer, period=period, direction="receivable", reference=reference, total=total, lines=json.dumps(lines), status="pending")
        InboxFlattr.update(settled_by=reference).where((InboxFlattr.peer == peer) & InboxFlattr.remote_id.in_([line["id"] for line in lines])).execute()
    return 202, {"status": "accepted", "reference": reference, "total": total}


def confirm_settlement(reference: str, amount: int | None = None) -> tuple[Settlement, bool]:
    """The money of a statement arrived (the operator, or a bank import with
    the amount it saw): pending revenue becomes revenue. Exactly once;
    returns (settlement, whether it was confirmed now). An unknown
    reference is NotFound; an amount other than the total is refused."""
    ref = clean_reference(reference)
    with database.atomic():
        s = Settlement.get_or_none((Settlement.reference == ref) & (Settlement.direction == "receivable"))
        if s is None:
            raise NotFound(said('no statement owed to this node has the reference %(ref)s', ref=iso11649.format(ref)))
        if amount is not None and amount != s.total:
            raise Validation(said('%(ref)s is for %(total)s cents, not %(amount)s', ref=iso11649.format(ref), total=s.total, amount=amount))
        if s.status == "confirmed":
            return s, False
        per_owner: dict[int, int] = defaultdict(int)
        for line in json.loads(s.lines):
            row = InboxFlattr.select(InboxFlattr, Thing.id, Thing.owner).join(Thing).where(
                (InboxFlattr.peer == s.peer_id) & (InboxFlattr.remote_id == line["id"])
            ).get()
            per_owner[row.thing.owner_id] += line["amount"]
        moves = [(ledger.node_account("external").id, -s.total), (Account.get(Account.code == receivable_code(s.peer_id)).id, s.total)]
        for owner_id, amount_ in per_owner.items():
            if amount_:
                moves.append((Account.get(Account.code == pending_revenue_code(owner_id)).id, -amount_))
                moves.append((ledger.user_account(owner_id, "revenue").id, amount_))
        ledger.post(f"settle:in:{s.peer_id}:{ref}:confirm", "settlement", moves, memo=f"{iso11649.format(ref)} arrived")
        Settlement.update(status="confirmed", settled_at=utcnow()).where(Settlement.id == s.id).execute()
    return Settlement.get_by_id(s.id), True


def is_receivable(reference: str) -> bool:
    ref = clean_reference(reference)
    return Settlement.select().where((Settlement.reference == ref) & (Settlement.direction == "receivable")).exists()


def pending_revenue(user: User) -> int:
    return ledger_balance(pending_revenue_code(user.id))


def ledger_balance(code: str) -> int:
    row = Account.select(Account.balance).where(Account.code == code).scalar()
    return row or 0


# --- both: what each side says ----------------------------------------------------------------


def listing(peer: Peer | None = None) -> list[Settlement]:
    query = Settlement.select(Settlement, Peer).join(Peer).order_by(Settlement.period, Peer.base_url, Settlement.direction)
    if peer is not None:
        query = query.where(Settlement.peer == peer)
    return list(query)


def answer_query(cfg: Config, method: str, url: str, headers: dict, body: bytes) -> dict:
    """POST /federation/settlements: this node's settlements with the asking peer."""
    peer, nonce = signing.verify(method, url, headers, body)
    with database.atomic():
        signing.remember_nonce(peer, nonce)
    return {
        "settlements": [
            {"period": s.period, "direction": s.direction, "reference": s.reference, "total": s.total, "status": s.status}
            for s in listing(peer)
        ]
    }


def compare_with(cfg: Config, peer: Peer) -> list[str]:
    """Differences between this node's settlements with `peer` and the peer's."""
    response = signing.send(cfg, "POST", f"{peer.base_url}/federation/settlements", {"type": "SettlementQuery"})
    data = outbound.json_of(response)
    if response.status_code != 200 or not isinstance(data.get("settlements"), list):
        raise outbound.PeerUnreachable(said('%(base_url)s answered %(status_code)s: %(value)s', base_url=peer.base_url, status_code=response.status_code, value=data.get('error_description', '')))
    flip = {"payable": "receivable", "receivable": "payable"}
    theirs = {(s.get("period"), flip.get(s.get("direction")), s.get("reference")): s.get("total") for s in data["settlements"] if isinstance(s, dict)}
    ours = {(s.period, s.direction, s.reference): s.total for s in listing(peer) if s.status != "refused"}
    problems = []
    for key in sorted(set(ours) | set(theirs), key=str):
        period, direction, ref = key
        if ours.get(key) != theirs.get(key):
            verb = "owes" if direction == "payable" else "is owed"
            problems.append(
                f"{peer.base_url} {period} {ref}: this node {verb} {ours.get(key, 'nothing')}, the peer says {theirs.get(key, 'nothing')}"
            )
    return problems
