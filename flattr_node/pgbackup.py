"""`flattr-node backup` on PostgreSQL: pg_dump --format=custom of the node's
database (or, when the URL's options set a search_path, of the node's schema).

pg_dump reads everything in one REPEATABLE READ transaction, so the archive
is one consistent snapshot even while the node takes flattrs: every
transaction committed before it began is in, none committed after. The
password goes to pg_dump in PGPASSWORD, never on its command line (where
`ps` would show it).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote, urlsplit

MISSING = "pg_dump not found: install the PostgreSQL client tools (e.g. apt install postgresql-client)"


class PgDumpError(Exception):
    """pg_dump is missing or failed; the message is one line for the user."""


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sets_search_path(url: str) -> bool:
    """Whether the URL's libpq `options` set a search_path
    (?options=-csearch_path%3Dnode1): the node's tables are then in a schema
    of their own, and the backup is of that schema."""
    options = dict(parse_qsl(urlsplit(url).query)).get("options", "")
    return re.search(r"(?:-c\s*|--)search_path=", options) is not None


def quote_pattern(name: str) -> str:
    """A schema name as a pg_dump pattern that matches it alone: quoted, so
    that its case is kept and * ? . are literal."""
    return '"' + name.replace('"', '""') + '"'


def pg_dump_command(url: str, schema: str | None = None, executable: str = "pg_dump") -> tuple[list[str], dict[str, str]]:
    """argv and environment for pg_dump of the database at `url` (only
    `schema` if given), writing the archive to stdout. The password is only
    in the environment."""
    parts = urlsplit(url)
    extra = dict(parse_qsl(parts.query))
    conn = {"dbname": unquote(parts.path.lstrip("/")) or "postgres"}
    if parts.hostname:
        conn["host"] = parts.hostname
    if parts.port:
        conn["port"] = str(parts.port)
    if parts.username:
        conn["user"] = unquote(parts.username)
    conn.update(extra)  # sslmode, host=/run/postgresql, options, …: libpq keywords, as psycopg2 took them
    conn.pop("password", None)
    env = dict(os.environ)
    password = unquote(parts.password) if parts.password else extra.get("password")
    if password:
        env["PGPASSWORD"] = password
    argv = [executable, "--format=custom", "--verbose", "--no-password"]
    if schema is not None:
        argv.append(f"--schema={quote_pattern(schema)}")
    argv.append("--dbname=" + " ".join(f"{key}={_conninfo_value(value)}" for key, value in conn.items()))
    return argv, env


def dump(url: str, out_fd: int, schema: str | None = None, on_table: Callable[[str], None] | None = None) -> None:
    """Run pg_dump of `url` (only `schema` if given) into the open file
    `out_fd`. Calls on_table(name)
    as pg_dump starts dumping each table's rows. Raises PgDumpError."""
    executable = shutil.which("pg_dump")
    if executable is None:
        raise PgDumpError(MISSING)
    argv, env = pg_dump_command(url, schema, executable)
    lines: collections.deque[str] = collections.deque(maxlen=50)
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=out_fd, stderr=subprocess.PIPE, env=env, text=True, errors="replace"
    )
    try:
        for line in proc.stderr:
            line = line.strip()
            if not line:
                continue
            lines.append(line)
            table = re.search(r"dumping contents of table \"?([^\"]+)\"?", line)
            if table and on_table is not None:
                on_table(table.group(1))
        code = proc.wait()
    except BaseException:  # Ctrl-C: do not leave pg_dump writing behind us
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stderr.close()
    if code != 0:
        # pg_dump's verbose lines end with its error, sometimes followed by a
        # "detail:" line; the error is what says what went wrong.
        errors = [line for line in lines if " error: " in line or line.startswith("pg_dump: error")]
        last = errors[-1] if errors else (lines[-1] if lines else f"exit status {code}")
        raise PgDumpError(f"pg_dump failed: {last.removeprefix('pg_dump: ').removeprefix('error: ')}")
