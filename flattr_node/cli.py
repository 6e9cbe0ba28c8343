"""The `flattr-node` command line (SPEC §4).

Every command exits 0 on success and 1 with one line on stderr on failure:
a user's mistake never prints a traceback.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import sys
from pathlib import Path

import click

from . import __version__, periods
from . import config as configmod
from . import db as dbmod
from .clitools import fail, node_command
from .models import utcnow

log = logging.getLogger("flattr_node")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The config file (else $FLATTR_NODE_CONFIG, else ./config.toml, else defaults).")
@click.version_option(__version__, prog_name="flattr-node")
@click.pass_context
def main(ctx, config_path):
    """flattr-node: a self-hosted Flattr. See README.md and SPEC §4."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command()
@click.pass_context
def init(ctx):
    """Create the config file (if none) and the database."""
    path = configmod.find_config_file(ctx.obj.get("config_path")) or Path(configmod.DEFAULT_FILE)
    if not path.exists():
        example = Path(__file__).with_name("config.example.toml").read_text()
        text = example.replace('secret_key = ""', f'secret_key = "{secrets.token_hex(32)}"', 1)
        try:
            # Readable by its owner alone from its first byte: it holds the secret key.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(text)
        except OSError as e:
            fail(f"cannot write {path}: {e.strerror or e}")
        click.echo(f"wrote {path}")
    ctx.obj["config_path"] = str(path)
    ctx.invoke(_init_db)


@click.command()
@node_command
def _init_db(cfg):
    from .schema import current_version

    click.echo(f"database ready at schema version {current_version()}: {cfg.database}")


@main.command()
@click.option("--host", help="Address to listen on (default: the config's host).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to listen on (default: the config's port); a base_url pointing at this server follows it."
)
@node_command
def serve(cfg, host, port):
    """Run the daemon: web pages, API and scheduler, on waitress."""
    import waitress

    from schedules import start_scheduler

    from .app import create_app
    from .serving import busy_port_message, follow_port

    cfg, warning = follow_port(cfg, host, port)
    if warning:
        click.echo(f"flattr-node: warning: {warning}", err=True)
    app = create_app(cfg, bind_database=False)
    try:  # bind first: a busy port fails here, before the scheduler's first tick
        server = waitress.create_server(app, host=cfg.host, port=cfg.port, threads=cfg.threads, ident="flattr-node")
    except OSError as e:
        fail(busy_port_message(cfg.host, cfg.port, e))
    scheduler = start_scheduler(cfg) if cfg.scheduler else None
    log.info("flattr-node %s serving %s on http://%s:%d (%s)", __version__, cfg.base_url, cfg.host, cfg.port, cfg.database.split("://")[0])
    click.echo(f"flattr-node: serving {cfg.base_url} (listening on {cfg.host}:{cfg.port}); Ctrl-C stops it", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


@main.group()
def user():
    """Manage people."""


@user.command("create")
@click.argument("name")
@click.option("--email", required=True, help="Their e-mail address.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Their password (asked for if not given).")
@click.option("--operator", is_flag=True, help="Make them an operator of this node.")
@node_command
def user_create(cfg, name, email, password, operator):
    """Add a person called NAME."""
    from .services import people

    person = people.create_user(cfg, name, email, password, operator=operator)
    click.echo(f"created {'operator ' if operator else ''}{person.username} (id {person.id})")


@user.command("reset-link")
@click.argument("name")
@node_command
def user_reset_link(cfg, name):
    """Print a one-time link with which NAME chooses a new password.

    For a node that sends no e-mail: hand the link to the person yourself.
    It works once, for 24 hours."""
    from .services import passwords, people

    click.echo(passwords.reset_link(cfg, passwords.operator_reset_token(people.get_user(name))))


@main.group()
def token():
    """Manage API tokens."""


@token.command("create")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="A name for the token, to recognise it later.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(["flattr", "thing", "email", "extendedread"]),
    help="What the token may do; repeat for several. Default: all scopes.",
)
@node_command
def token_create(cfg, name, label, scopes):
    """Print a new API token for NAME on stdout, alone."""
    from .services import people

    click.echo(people.create_token(people.get_user(name), label, list(scopes) or None))


@main.group()
def oauth():
    """OAuth 2.0 apps (clients) that act for people on this node."""


@oauth.group("client")
def oauth_client():
    """Register OAuth apps."""


@oauth_client.command("create")
@click.argument("name")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    help="Where the node sends people back; repeat for several. Matched exactly.",
)
@click.option("--owner", default=None, help="The person who manages the app on their dashboard (default: the operator).")
@node_command
def oauth_client_create(cfg, name, redirect_uris, owner):
    """Register an app called NAME; print its client id and secret (shown only now)."""
    from .oauth import clients
    from .services import people

    client, secret = clients.create_client(people.get_user(owner) if owner else None, name, list(redirect_uris))
    click.echo(f"client_id: {client.client_id}")
    click.echo(f"client_secret: {secret}")


@main.group()
def deposit():
    """Confirm or cancel deposits."""


@deposit.command("confirm")
@click.argument("id_or_reference")
@node_command
def deposit_confirm(cfg, id_or_reference):
    """The money of a pending deposit arrived: credit it (once)."""
    from .money import format_amount
    from .services import funds

    dep, created = funds.confirm_deposit(id_or_reference)
    amount = format_amount(dep.amount, cfg.currency)
    if created:
        click.echo(f"confirmed deposit {dep.id} ({dep.reference}): {amount} added to {dep.user.username}'s funds")
    else:
        click.echo(f"deposit {dep.id} ({dep.reference}) was already confirmed: nothing credited again")


@deposit.command("cancel")
@click.argument("id_or_reference")
@node_command
def deposit_cancel(cfg, id_or_reference):
    """A pending deposit will not be paid."""
    from .services import funds

    dep = funds.cancel_deposit(id_or_reference)
    click.echo(f"cancelled deposit {dep.id} ({dep.reference})")


@deposit.command("list")
@click.option("--status", type=click.Choice(["pending", "confirmed", "cancelled"]), default="pending", show_default=True)
@node_command
def deposit_list(cfg, status):
    """List deposits, pending ones by default."""
    from .models import Deposit, User
    from .money import format_amount

    for dep in Deposit.select(Deposit, User).join(User).where(Deposit.status == status).order_by(Deposit.id):
        click.echo(f"{dep.id}\t{dep.reference}\t{format_amount(dep.amount, cfg.currency)}\t{dep.user.username}\t{dep.status}")


@main.group()
def payout():
    """Settle payouts (withdrawals)."""


@payout.command("paid")
@click.argument("payout_id", type=int)
@node_command
def payout_paid(cfg, payout_id):
    """The money of a requested payout was sent."""
    from .services import funds

    p, created = funds.mark_paid(payout_id)
    click.echo(f"payout {p.id} {'marked paid' if created else 'was already paid'}")


@payout.command("failed")
@click.argument("payout_id", type=int)
@node_command
def payout_failed(cfg, payout_id):
    """A payout could not be sent: return it to the person's revenue."""
    from .services import funds

    p, created = funds.mark_failed(payout_id)
    click.echo(f"payout {p.id} {'marked failed; its amount is back in revenue' if created else 'was already failed'}")


@main.command("close-month")
@click.argument("period", required=False)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@node_command
def close_month(cfg, period, quiet):
    """Close PERIOD (YYYY-MM; default: the last ended one), exactly once."""
    from . import closing
    from .money import format_amount

    now = utcnow()
    name = period or periods.last_ended(now, cfg.tz)
    bar = None

    def progress(stage, done, total):
        nonlocal bar
        if quiet or not stage.startswith("apply") or stage.endswith("before-commit"):
            return
        if bar is None:
            bar = click.progressbar(length=total, label=f"closing {name}", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    from .federation import gave

    gave.prepare(cfg, name)  # the peers' answers for R8 (SPEC §6), before the close plans
    try:
        result = closing.close_period(cfg, name, now, hook=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(
        f"period {result.name} closed: {result.givers} givers, {result.counted} of {result.flattrs} flattrs counted, "
        f"{format_amount(result.distributed, cfg.currency)} to owners, {format_amount(result.fees, cfg.currency)} in fees"
    )
    from .federation import settlement

    settlement.make_statements(cfg, result.name)  # what this node owes its peers (SPEC §6); sent by the scheduler or `peer sync`


@main.command()
@node_command
def check(cfg):
    """Verify the ledger (SPEC R12); exit 1 and say what is wrong."""
    from .ledger import check_ledger

    result = check_ledger()
    if not result.ok:
        for problem in result.problems:
            click.echo(f"flattr-node: ledger check failed: {problem}", err=True)
        sys.exit(1)
    click.echo("ledger ok: every transaction balances, every balance matches its postings")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@node_command
def backup(cfg, path):
    """Write a consistent copy of the live database to PATH.

    SQLite: a copy of the database file (SQLite's online backup), opened by
    pointing `database` at it. PostgreSQL: a pg_dump archive
    (--format=custom, one snapshot; only the node's schema if the URL's
    options set a search_path), to restore with pg_restore into an empty
    database (see docs/deployment.md). Either way while the node runs; PATH
    must not exist.
    """
    target = Path(path)
    if target.exists():
        fail(f"{path} exists: choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    if dbmod.dialect().postgres:  # pg_dump; SQLite's online backup API below
        _backup_postgres(cfg.database, target)
        click.echo(f"backup written to {path}")
        return
    source = dbmod.database.connection()
    dest = sqlite3.connect(str(target))
    total = source.execute("PRAGMA page_count").fetchone()[0]
    try:
        with click.progressbar(length=total, label="backing up", file=sys.stderr) as bar:

            def progress(status, remaining, pages):
                bar.update(pages - remaining - bar.pos)

            source.backup(dest, pages=256, progress=progress)
    finally:
        dest.close()
    click.echo(f"backup written to {path}")


def _backup_postgres(url: str, target: Path) -> None:
    """pg_dump into a file made here (never one that was there); removed again
    if pg_dump is missing or fails. On a terminal, a status line names the
    table being copied: pg_dump tells which table, not how far it is."""
    from .pgbackup import PgDumpError, dump, sets_search_path

    # A node in a schema of its own (the URL sets a search_path): that schema,
    # the one its tables are in, is the backup.
    schema = dbmod.database.execute_sql("SELECT current_schema()").fetchone()[0] if sets_search_path(url) else None
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a dump holds password hashes
    except FileExistsError:
        fail(f"{target} exists: choose a new file")
    status = sys.stderr.isatty()
    tables = 0

    def on_table(name):
        nonlocal tables
        tables += 1
        click.echo(f"\r\033[Kbacking up with pg_dump: table {tables}, {name}", nl=False, err=True)

    try:
        try:
            dump(url, fd, schema, on_table if status else None)
        finally:
            os.close(fd)
            if status and tables:
                click.echo("\r\033[K", nl=False, err=True)
    except BaseException as e:
        target.unlink(missing_ok=True)
        if isinstance(e, PgDumpError):
            fail(str(e))
        raise


@main.command("migrate-db")
@click.option("--to", "target", required=True, metavar="URL", help="The new database, e.g. postgresql://user@host/flattr.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@node_command
def migrate_db(cfg, target, quiet):
    """Copy this node's data into an empty database at URL (SQLite to PostgreSQL)."""
    from .copydb import check_target, copy_database

    bar = None

    def progress(done, total):
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="copying", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        copied = copy_database(target, progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    result = check_target(target)
    if not result.ok:
        for problem in result.problems:
            click.echo(f"flattr-node: ledger check failed on the copy: {problem}", err=True)
        sys.exit(1)
    click.echo(f"copied {sum(copied.values())} rows in {len(copied)} tables; ledger ok on the copy")
    click.echo(f"now set database = \"{target}\" in the config and restart the node")


@main.command()
@click.option("--platform", required=True, type=click.Choice(["html", "markdown", "wordpress", "blogger", "tumblr", "hugo", "jekyll"]), help="Where the markup goes.")
@click.option("--thing", "thing_id", type=int, help="A registered thing's id.")
@click.option("--url", help="A post's URL, for an auto-submit button (with --user).")
@click.option("--user", "username", help="The post's owner on this node (auto-submit); alone: a template for every post.")
@click.option("--size", type=click.Choice(["default", "compact"]), default="default", show_default=True, help="Flattr's two button sizes.")
@click.option("--no-script", is_flag=True, help="Only the JavaScript-free link, without the popup script.")
@node_command
def snippet(cfg, platform, thing_id, url, username, size, no_script):
    """Print the button markup to paste into a blog (see docs/buttons.md)."""
    from .services import embeds

    click.echo(embeds.snippet_for(cfg, platform, thing_id=thing_id, url=url, username=username, size=size, with_script=not no_script), nl=False)


def _package_commands() -> None:
    """The commands that live in their packages: bank (import, review,
    payout export, refund) and federation (peer, settlement)."""
    from .bank.cli import register
    from .federation.cli import commands

    register(main, payout)
    commands(main, node_command)


_package_commands()

if __name__ == "__main__":
    main()
