"""`flattr-node peer ...`: the operator's side of federation."""

from __future__ import annotations

import sys

import click

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
        """Deliver every flattr waiting in the outbox now (the scheduler does it on its own)."""
        from . import delivery

        total = delivery.pending_count()
        with click.progressbar(length=total, label="delivering", file=sys.stderr) if total and not quiet else _Nothing() as bar:
            counts = delivery.drain(cfg, limit=max(total, 1), force=True, progress=lambda done, _n: bar.update(1))
        click.echo(f"delivered {counts['delivered']}, waiting {counts['waiting']}, refused {counts['refused']}")
        if counts["waiting"]:
            sys.exit(1)


    return [peer]


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass
