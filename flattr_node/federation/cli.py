"""`flattr-node peer ...`: the operator's side of federation."""

from __future__ import annotations

import sys

import click

from ..errors import FlattrError
from ..money import format_amount


def commands(main: click.Group, node_command) -> None:
    """Add the federation commands to the CLI (`node_command` comes from
    flattr_node.cli, which imports this module: passed in, not imported)."""
    for command in _commands(node_command):
        main.add_command(command)


def _commands(node_command):
    @click.group()
    def peer():
        """Federate with other nodes: add, list, remove peers; deliver now."""


    @peer.command("add")
    @click.argument("url")
    @click.option("--credit-limit", type=click.IntRange(min=0), default=None, help="Cents the peer may owe this node, unpaid, before it takes no more of its flattrs (default: no limit).")
    @node_command
    def peer_add(cfg, url, credit_limit):
        """Add the node at URL (its base_url) as a peer; its key is pinned now."""
        from . import peers

        p = peers.add_peer(cfg, url, credit_limit)
        limit = "no credit limit" if p.credit_limit is None else f"credit limit {format_amount(p.credit_limit, cfg.currency)}"
        click.echo(f"peer {p.base_url} added ({limit}); key {p.key_id}. It must add this node too: {cfg.base_url}")


    @peer.command("list")
    @node_command
    def peer_list(cfg):
        """Every peer with its key, credit limit and deliveries waiting."""
        from .models import Outbox
        from .peers import list_peers, owed_by

        rows = list_peers()
        if not rows:
            click.echo("no peers")
        for p in rows:
            waiting = Outbox.select().where((Outbox.peer == p) & (Outbox.status == "pending")).count()
            limit = "none" if p.credit_limit is None else format_amount(p.credit_limit, cfg.currency)
            line = f"{p.base_url}\tkey {p.key_id}\tcredit limit {limit}\towes us {format_amount(owed_by(p), cfg.currency)}\twaiting {waiting}"
            line += f"\tbank {p.bank_iban or 'none'}"
            click.echo(line + (f"\trefusing: {p.refusal}" if p.refusal else ""))


    @peer.command("remove")
    @click.argument("url")
    @node_command
    def peer_remove(cfg, url):
        """Stop federating with the node at URL (its history is kept)."""
        from .peers import remove_peer

        p = remove_peer(url)
        click.echo(f"peer {p.base_url} removed: this node no longer sends to it or accepts its requests")


    @peer.command("sync")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    @node_command
    def peer_sync(cfg, quiet):
        """Deliver every flattr waiting in the outbox now (the scheduler does it
        on its own), send statements, and read each peer's bank details again."""
        from . import delivery, peers

        total = delivery.pending_count()
        with click.progressbar(length=total, label="delivering", file=sys.stderr) if total and not quiet else _Nothing() as bar:
            counts = delivery.drain(cfg, limit=max(total, 1), force=True, progress=lambda done, _n: bar.update(1))
        from .settlement import settle_after_close

        sent = settle_after_close(cfg)
        click.echo(f"delivered {counts['delivered']}, waiting {counts['waiting']}, refused {counts['refused']}")
        if sent["sent"] or sent["waiting"] or sent["refused"]:
            click.echo(f"statements sent {sent['sent']}, waiting {sent['waiting']}, refused {sent['refused']}")
        for p in peers.list_peers():
            try:
                changed = peers.refresh_bank_details(cfg, p)
            except FlattrError as e:
                changed = f"{p.base_url}: bank details not read: {e.description}"
            if changed:
                click.echo(changed)
        if counts["waiting"] or sent["waiting"]:
            sys.exit(1)


    @click.group()
    def settlement():
        """What this node owes its peers and is owed by them (SPEC §6)."""

    @settlement.command("list")
    @node_command
    def settlement_list(cfg):
        """Every statement, per peer and period, with its ISO 11649 reference."""
        from stdnum import iso11649

        from .settlement import listing

        rows = listing()
        if not rows:
            click.echo("no settlements")
        for s in rows:
            verb = "we owe" if s.direction == "payable" else "owes us"
            exported = f"\tin payout export {s.exported_in}" if s.exported_in else ""
            click.echo(f"{s.period}\t{s.peer.base_url}\t{verb}\t{format_amount(s.total, cfg.currency)}\t{iso11649.format(s.reference)}\t{s.status}{exported}"
                       + (f"\t{s.last_error}" if s.status == "refused" and s.last_error else ""))

    @settlement.command("paid")
    @click.argument("reference")
    @node_command
    def settlement_paid(cfg, reference):
        """This node's operator paid the statement REFERENCE by bank transfer."""
        from .settlement import mark_paid

        settled(cfg, mark_paid(reference), "to", "marked paid", "was already paid")

    @settlement.command("confirm")
    @click.argument("reference")
    @node_command
    def settlement_confirm(cfg, reference):
        """The money of statement REFERENCE arrived: pending revenue becomes revenue (exactly once)."""
        from .settlement import confirm_settlement

        settled(cfg, confirm_settlement(reference), "from", "confirmed: its owners' pending revenue is now revenue", "was already confirmed")

    def settled(cfg, outcome, direction: str, done: str, before: str) -> None:
        """One line for `settlement paid` and `settlement confirm`."""
        s, new = outcome
        click.echo(f"{s.reference} {direction} {s.peer.base_url} ({format_amount(s.total, cfg.currency)}) {done if new else before}")

    @click.group()
    def peers():
        """Checks across peers."""

    @peers.command("check")
    @node_command
    def peers_check(cfg):
        """Compare, per peer and period, what this node owes or is owed with what the peer says; exit 1 on any difference."""
        from .models import Peer
        from .settlement import compare_with

        problems = []
        for p in Peer.select().where(Peer.removed_at.is_null()).order_by(Peer.base_url):
            try:
                problems += compare_with(cfg, p)
            except FlattrError as e:
                problems.append(f"{p.base_url}: cannot compare: {e.description}")
        for problem in problems:
            click.echo(f"flattr-node: peers check: {problem}", err=True)
        if problems:
            sys.exit(1)
        click.echo("peers agree: every statement is the same on both sides")

    return [peer, settlement, peers]


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass
