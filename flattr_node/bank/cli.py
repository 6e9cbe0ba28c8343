"""The bank commands: `bank import`, `bank review`, `payout export`,
`refund`. Registered on the main group by flattr_node/cli.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..clitools import fail, node_command


@click.group()
def bank():
    """Bank statements: import them, see what needs review."""


@bank.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@node_command
def bank_import(cfg, path, quiet):
    """Import a bank statement (CAMT.053 or MT940, told apart by content).

    Credits naming a pending deposit's reference with its amount confirm it;
    debits carrying an exported payout's EndToEndId mark it paid; everything
    else goes to the review list (operator pages, or `bank review`). Running
    it again with the same or an overlapping statement changes nothing.
    """
    from .matching import import_statement
    from .statements import StatementError, read_statement

    try:
        statement = read_statement(path, cfg.currency, cfg.bank_max_statement_mb)
    except StatementError as e:
        fail(f"{path}: {e}")
    bar = None

    def progress(done, total):
        nonlocal bar
        if quiet or total < 2000:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="importing", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        result = import_statement(cfg, statement, progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    c = result.counts
    click.echo(
        f"imported {path} ({result.format}, {len(statement.entries)} entries): {c['confirmed']} confirmed, "
        f"{c['paid']} paid, {c['settled']} settlements, {c['review']} to review, {c['seen']} already seen"
    )


@bank.command("review")
@node_command
def bank_review(cfg):
    """List the entries waiting for the operator's decision."""
    from ..money import format_amount
    from .matching import review_list

    rows = review_list()
    for e in rows:
        sign = "+" if e.credit else "-"
        click.echo(f"{e.id}\t{e.booked_on or ''}\t{sign}{format_amount(e.amount, cfg.currency)}\t{e.counterparty}\t{e.text[:60]}\t{e.reason}")
    if not rows:
        click.echo("nothing to review")


@bank.command("assign")
@click.argument("entry_id", type=int)
@click.argument("deposit")
@node_command
def bank_assign(cfg, entry_id, deposit):
    """Credit a reviewed entry to DEPOSIT (id or reference), with the amount received."""
    from ..money import format_amount
    from .matching import assign_to_deposit

    dep = assign_to_deposit(cfg, entry_id, deposit)
    click.echo(f"entry {entry_id}: {format_amount(dep.amount, cfg.currency)} added to {dep.user.username}'s funds (deposit {dep.reference})")


@bank.command("returned")
@click.argument("entry_id", type=int)
@node_command
def bank_returned(cfg, entry_id):
    """Mark a reviewed entry as sent back (nothing is credited)."""
    from .matching import mark_returned

    mark_returned(entry_id)
    click.echo(f"entry {entry_id} marked returned")


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@node_command
def payout_export(cfg, path):
    """Write every requested payout not exported yet, and every settlement
    this node owes a peer (statement sent, not paid), to PATH, as one SEPA
    credit transfer file (pain.001.001.03) to upload to the bank. Each is
    exported once, ever; PATH must not exist."""
    from ..money import format_amount
    from .payouts import check_can_export, export_payouts

    target = Path(path)
    if target.exists():
        fail(f"{path} exists: choose a new file")
    check_can_export(cfg)
    try:  # made before the payouts are claimed: a path we cannot write fails first
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        fail(f"cannot write {path}: {e.strerror or e}")
    try:
        result = export_payouts(cfg)
        with os.fdopen(fd, "wb") as f:
            f.write(result.xml)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    for line in result.left_out:
        click.echo(f"flattr-node: payout export: {line}", err=True)
    if result.export is None:
        target.unlink(missing_ok=True)
        click.echo("no payouts to export")
        return
    click.echo(
        f"wrote {path}: export {result.export.id}, {result.count} transfers, {format_amount(result.total, cfg.currency)} "
        f"(message {result.export.message_id}); upload it to the bank"
    )


@click.command("refund")
@click.argument("name")
@click.argument("amount", type=click.IntRange(1))
@node_command
def refund_cmd(cfg, name, amount):
    """Refund AMOUNT cents of NAME's unspent funds to their payout account
    (a payout from funds, in the next `payout export`)."""
    from ..money import format_amount
    from .payouts import refund

    p = refund(cfg, name, amount)
    click.echo(f"refund {p.id}: {format_amount(p.amount, cfg.currency)} of {name}'s funds, in the next payout export")


def register(main: click.Group, payout: click.Group) -> None:
    main.add_command(bank)
    main.add_command(refund_cmd)
    payout.add_command(payout_export)
