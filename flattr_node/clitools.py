"""What every `flattr-node` command shares: one-line failures and
`node_command` (config, database, migrations, errors mapped to one line).

Apart from cli.py so that the command modules of packages (bank/cli.py,
federation/cli.py) can import it while cli.py imports them.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

import click

from . import config as configmod
from . import db as dbmod
from .errors import FlattrError


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def fail(message: str) -> None:
    message = " ".join(str(message).split())  # one line, even for a driver's multi-line message
    click.echo(f"flattr-node: {message}", err=True)
    sys.exit(1)


def node_command(fn):
    """Load the config, open the database, migrate it, map errors to one line."""

    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        try:
            cfg = configmod.load(ctx.obj.get("config_path"))
            setup_logging(os.environ.get("FLATTR_NODE_LOG_LEVEL", "WARNING" if fn.__name__ != "serve" else cfg.log_level))
            db = dbmod.bind(cfg.database)
            db.connect(reuse_if_open=True)
            from .schema import migrate

            migrate()
            result = fn(cfg, *args, **kwargs)
            _mail_notices(cfg)
            return result
        except configmod.ConfigError as e:
            fail(str(e))
        except FlattrError as e:
            fail(e.description)
        except dbmod.DatabaseConnectError as e:
            fail(f"cannot open the database: {e}")
        except dbmod.DriverOperationalError as e:  # PostgreSQL deadlock / serialization failure
            fail(f"the database refused a transaction ({str(e).strip()}); it was rolled back: run the command again")
        except OSError as e:  # a path that cannot be made or written: the user's to fix
            fail(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))

    return wrapper


def _mail_notices(cfg) -> None:
    """A command that queued notices (a deposit confirmed) mails them before it exits."""
    from . import mailer
    from .services import notices

    notices.kick(cfg)
    mailer.wait()
