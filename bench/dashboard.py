"""Dashboard benchmark: how the pages scale with a person's flattrs and the
node's creators, as ratios to a trivial page (`GET /healthz`) in the same run.

    .venv/bin/python bench/dashboard.py                 # SQLite file in a temp dir
    .venv/bin/python bench/dashboard.py --database postgresql://postgres@127.0.0.1:5432/test

The pages are rendered through the Flask test client (no network), so the
ratio is the cost of the page's queries and template against the cost of the
app's request handling alone. Target: the dashboard with 1000 flattrs this
month and the directory with 1000 creators within 100x of /healthz.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Run as a script, bench/ would come first on sys.path and its http.py would
# shadow the standard library's `http` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from flattr_node import db as dbmod  # noqa: E402
from flattr_node import ledger  # noqa: E402
from flattr_node.app import create_app  # noqa: E402
from flattr_node.config import Config, validate  # noqa: E402
from flattr_node.models import Flattr, Thing, User, utcnow  # noqa: E402
from flattr_node.periods import name_of  # noqa: E402
from flattr_node.schema import migrate  # noqa: E402
from flattr_node.services import funds, people  # noqa: E402


def timed(client, path: str, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(samples)


def add_creators(cfg, count: int, start: int, giver: User) -> None:
    """`count` creators with one thing each, all flattred by `giver` this month."""
    password_hash = people.hash_password("bench password")
    period = name_of(utcnow(), cfg.tz)
    with dbmod.database.atomic():
        for i in range(start, start + count):
            user = User.create(username=f"c{i}", email=f"c{i}@example.org", password_hash=password_hash, monthly_budget=200)
            ledger.open_user_accounts(user)
            thing = Thing.create(owner=user, url=f"https://c{i}.example/post", title=f"Post {i}", tags="bench")
            Flattr.create(giver=giver, thing=thing, owner=user, period=period)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    if url.startswith("postgres"):
        import psycopg2

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg2.connect(url) as conn:
            conn.autocommit = True
            conn.cursor().execute(f"CREATE SCHEMA {schema}")
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    cfg = validate(Config(database=url, secret_key="bench", scheduler=False))
    database = dbmod.bind(cfg.database)
    database.connect(reuse_if_open=True)
    migrate()
    kim = people.create_user(cfg, "kim", "kim@example.org", "bench password")
    funds.confirm_deposit(funds.open_deposit(kim, 10000).id)
    app = create_app(cfg, bind_database=False)
    client = app.test_client()
    token = client.get("/signin").get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert client.post("/signin", data={"csrf_token": token, "username": "kim", "password": "bench password"}).status_code == 302

    base = timed(client, "/healthz", args.rounds * 4)
    print(f"GET /healthz: {base * 1000:.2f} ms (the unit)")
    have = 0
    for size in (10, 100, 1000):
        add_creators(cfg, size - have, have, kim)
        have = size
        for path in ("/dashboard", "/directory", "/directory?tag=bench", "/dashboard/history"):
            t = timed(client, path, args.rounds)
            print(f"{path:<24} with {size:>5} flattrs/creators: {t * 1000:8.2f} ms = {t / base:7.1f} x /healthz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
