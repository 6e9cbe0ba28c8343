"""Federation benchmark: remote flattrs through real servers.

Two `flattr-node serve` processes, A (the readers' home node) and B (the
host), SQLite each, peered. Readers on A flattr things on B by URL (each
one writes the flattr and its outbox row in one transaction) and things on
A by URL, in interleaved rounds of the same size; the ratio of remote to
local flattrs per second is what the outbox costs a click (target >= 0.8).
Then `flattr-node peer sync` delivers every remote flattr to B, signed:
deliveries per second (reported; no target).

    .venv/bin/python bench/federation.py                 # 10,000 remote flattrs
    .venv/bin/python bench/federation.py --readers 30    # 900: a sanity run

Exits 1 if a flattr was not a 201 or a delivery did not arrive.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's `http` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import requests  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fednodes import Node, peer  # noqa: E402
from nodeproc import copy_rows, seed_people  # noqa: E402

from flattr_node.config import Config, validate  # noqa: E402

TARGET = 0.8


def run(url: str, pairs: list[tuple[str, str]], clients: int) -> tuple[float, list]:
    """POST /api/v1/flattr for each (token, url) from `clients` threads: flattrs/s."""
    todo = iter(pairs)
    lock = threading.Lock()
    failures: list = []

    def work():
        with requests.Session() as s:
            while True:
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                token, thing_url = item
                r = s.post(f"{url}/api/v1/flattr", json={"url": thing_url}, headers={"Authorization": f"Bearer {token}"}, timeout=120)
                if r.status_code != 201:
                    failures.append((r.status_code, r.text[:200]))

    start = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(pairs) / (time.monotonic() - start), failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=100, help="readers on A (default 100)")
    parser.add_argument("--things", type=int, default=100, help="things on B; readers x things remote flattrs (default 100)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="flattr-fed-bench-"))
    load_before = os.getloadavg()[0]
    a, b = Node(tmp, "a"), Node(tmp, "b")
    print(f"seeding {args.readers} readers on A, {args.things} things on B ...", file=sys.stderr)
    cfg = lambda node: validate(Config(database=node.database, secret_key="x" * 32, scheduler=False))  # noqa: E731
    on_a = seed_people(cfg(a), people=args.readers, things_per_person=1)
    on_b = seed_people(cfg(b), people=max(1, args.things // 10), things_per_person=10)
    results: dict = {"readers": args.readers, "clients": args.clients, "rounds": args.rounds}
    try:
        a.start(), b.start()
        peer(a, b)
        tokens = [tok for _, tok in sorted(on_a["tokens"].items())]
        remote = [f"{b.url}/things/{t}" for t in on_b["things"][: args.things]]
        local_owner = dict(zip(on_a["things"], sorted(on_a["tokens"]), strict=True))
        uid_of = {tok: uid for uid, tok in on_a["tokens"].items()}
        things_a = {t: requests.get(f"{a.url}/api/v1/things/{t}", timeout=30).json()["url"] for t in on_a["things"]}
        # Warm-up (not timed): the first reader makes A learn every remote thing.
        _, failed = run(a.url, [(tokens[0], u) for u in remote], args.clients)
        remote_pairs = [(tok, u) for tok in tokens[1:] for u in remote]
        local_pairs = [(tok, things_a[t]) for tok in tokens for t in on_a["things"] if local_owner[t] != uid_of[tok]]
        rng = random.Random(1)
        rng.shuffle(remote_pairs)
        rng.shuffle(local_pairs)
        n = min(len(remote_pairs), len(local_pairs)) // args.rounds
        ratios, local_rates, remote_rates = [], [], []
        for i in range(args.rounds):
            local_rate, f1 = run(a.url, local_pairs[i * n : (i + 1) * n], args.clients)
            remote_rate, f2 = run(a.url, remote_pairs[i * n : (i + 1) * n], args.clients)
            failed += f1 + f2
            local_rates.append(local_rate)
            remote_rates.append(remote_rate)
            ratios.append(remote_rate / local_rate)
            print(f"round {i + 1}: local {local_rate:.0f}/s, remote {remote_rate:.0f}/s, ratio {ratios[-1]:.2f}", file=sys.stderr)
        recorded = len(remote) + n * args.rounds
        start = time.monotonic()
        sync = a.cli("peer", "sync", "--quiet", check=False, timeout=6 * 3600)
        drain_s = time.monotonic() - start
        delivered = copy_rows(b.database, "SELECT COUNT(*) FROM inbox_flattr")[0][0]
        results.update(
            remote_flattrs=recorded, local_flattrs=n * args.rounds,
            local_per_s=round(statistics.median(local_rates), 1), remote_per_s=round(statistics.median(remote_rates), 1),
            ratio=round(statistics.median(ratios), 3), target=TARGET,
            delivered=delivered, drain_seconds=round(drain_s, 1), deliveries_per_s=round(delivered / drain_s, 1),
            failed=len(failed), load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2),
        )  # fmt: skip
        ok = not failed and delivered == recorded and sync.returncode == 0
    finally:
        a.stop(), b.stop()
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
        if failed:
            print(f"failures (first): {failed[:3]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
