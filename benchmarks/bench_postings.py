"""Ledger postings per second: `python -m benchmarks.bench_postings [--postings N] [--writers W]`.

Runs in a throwaway database (`bench_payments`, or $BENCH_POSTINGS_DB; created and migrated
here, dropped at the end unless --keepdb) on the PostgreSQL of DATABASE_URL, with writer
*processes* (as web and Celery workers are), each on its own connection, connected before the
clock starts and released together; and prints one line per scenario with the rate and the
latency of one call (p50, p99):

- spread:        each writer posts between its own players' wallets and game accounts (no
                 two writers touch the same account);
- hot account:   every posting credits a player from the same PSP clearing account, the
                 classic SQL-ledger bottleneck (all writers queue on one row lock);
- hot, batched:  the same postings through `do_post_transfers_batch`, 100 per transaction
                 (latency is per batch; $BENCH_POSTINGS_BATCH changes the size);
- spread, batched: the spread postings through `do_post_transfers_batch`, as an import or a
                 game-round batch over many wallets would post them;
- naive ORM:     the hot account through the pattern the house style forbids (get, +=, save:
                 one statement per row, two per entry), for comparison;
- raw SQL:       the hot account as a bare INSERT of the same rows: one statement that locks
                 both accounts in id order, inserts the header and the two entries with their
                 balance_after and updates both balances, in autocommit (the floor: no
                 idempotency, balance or brand checks, no Python between lock and commit).

Every scenario ends with `check_ledger` clean, or the script fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

# Several people may run this at once on one server: BENCH_POSTINGS_DB names the throwaway
# database.
BENCH_DB = os.environ.get("BENCH_POSTINGS_DB", "bench_payments")


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings.test")
    import django

    django.setup()


def _world(players: int) -> dict:
    """A brand, `players` players with wallets, a PSP clearing and per-player house accounts."""
    from backoffice.models import Brand
    from payments.models import Account
    from payments.services import ledger
    from players.models import Player

    brand = Brand.objects.create(
        code="bench", name="Bench", jurisdiction="MT", default_currency="EUR"
    )
    people = Player.objects.bulk_create(
        Player(
            brand=brand, external_ref=f"B{i:06d}", username=f"bench{i}",
            email=f"bench{i}@example.test", first_name="Bench", last_name=f"P{i}",
            country="MT", currency="EUR",
        )
        for i in range(players)
    )  # fmt: skip
    clearing = ledger.get_house_account(brand.pk, Account.Kind.PSP_CLEARING, "EUR", "bench")
    cash = [ledger.get_wallet(p, "EUR")["cash"].pk for p in people]
    tables = [
        ledger.get_house_account(brand.pk, Account.Kind.GAME_PROVIDER, "EUR", f"t{i}").pk
        for i in range(players)
    ]
    return {
        "brand": brand.pk,
        "players": [p.pk for p in people],
        "cash": cash,
        "tables": tables,
        "clearing": clearing.pk,
    }


# -- the writers (run in child processes) ---------------------------------------------------


def _writer(scenario, world, worker, writers, count, barrier, results) -> None:
    from django.db import connection

    connection.close()  # a connection of our own, never the parent's
    connection.ensure_connection()
    connection.cursor().execute("SELECT 1")
    try:
        barrier.wait(timeout=120)
        started = time.perf_counter()
        latencies = WRITERS[scenario](world, worker, writers, count)
        results.put((count, started, time.perf_counter(), latencies))
    except BaseException as exc:
        results.put(exc)
        raise
    finally:
        connection.close()


def _slots(world, worker, writers):
    """The players a writer posts for: its own share, so spread writers never meet."""
    n = len(world["players"])
    share = max(1, n // writers)
    first = (worker * share) % n
    return [(first + k) % n for k in range(share)]


def _timed(calls) -> list[float]:
    latencies = []
    for call in calls:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    return latencies


def _spread(world, worker, writers, count) -> list[float]:
    from payments.services import ledger

    slots = _slots(world, worker, writers)

    def post(i):
        slot = slots[i % len(slots)]
        return lambda: ledger.do_post_transfer(
            idempotency_key=f"spread:{world['round']}:{worker}:{i}",
            kind="win",
            legs=[(world["tables"][slot], -1), (world["cash"][slot], 1)],
            brand=world["brand"],
            player=world["players"][slot],
            timeline=False,
        )

    return _timed(post(i) for i in range(count))


def _hot(world, worker, writers, count) -> list[float]:
    from payments.services import ledger

    slots = _slots(world, worker, writers)

    def post(i):
        slot = slots[i % len(slots)]
        return lambda: ledger.do_post_transfer(
            idempotency_key=f"hot:{world['round']}:{worker}:{i}",
            kind="deposit",
            legs=[(world["clearing"], -1), (world["cash"][slot], 1)],
            brand=world["brand"],
            player=world["players"][slot],
            timeline=False,
        )

    return _timed(post(i) for i in range(count))


def _batches(world, worker, writers, count, *, hot: bool) -> list[float]:
    from payments.services import ledger
    from payments.services.ledger import Leg, Transfer

    slots = _slots(world, worker, writers)
    prefix = "batch" if hot else "sbatch"

    def batch(done):
        transfers = []
        for i in range(done, min(done + BATCH, count)):
            slot = slots[i % len(slots)]
            source = world["clearing"] if hot else world["tables"][slot]
            transfers.append(
                Transfer(
                    idempotency_key=f"{prefix}:{world['round']}:{worker}:{i}",
                    kind="deposit" if hot else "win",
                    legs=[Leg(source, -1), Leg(world["cash"][slot], 1)],
                    brand_id=world["brand"],
                    player_id=world["players"][slot],
                    timeline=False,
                )
            )
        return lambda: ledger.do_post_transfers_batch(transfers)

    # the batch is built inside the clock: building Transfers is part of the caller's cost
    return _timed(batch(done) for done in range(0, count, BATCH))


def _batched(world, worker, writers, count) -> list[float]:
    return _batches(world, worker, writers, count, hot=True)


def _spread_batched(world, worker, writers, count) -> list[float]:
    return _batches(world, worker, writers, count, hot=False)


def _naive(world, worker, writers, count) -> list[float]:
    """What not to do: read-modify-write through model saves, one row at a time."""
    from django.db import transaction

    from payments.models import Account, LedgerEntry, LedgerTransaction

    slots = _slots(world, worker, writers)

    def post(i):
        slot = slots[i % len(slots)]
        with transaction.atomic():
            ids = sorted([world["clearing"], world["cash"][slot]])
            accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids)}
            txn = LedgerTransaction.objects.create(
                idempotency_key=f"naive:{world['round']}:{worker}:{i}",
                kind="deposit",
                fingerprint="-",
                brand_id=world["brand"],
                player_id=world["players"][slot],
            )
            for account_id, amount in ((world["clearing"], -1), (world["cash"][slot], 1)):
                account = accounts[account_id]
                account.balance += amount
                account.save(update_fields=["balance"])
                LedgerEntry.objects.create(
                    transaction=txn,
                    account=account,
                    brand_id=account.brand_id,
                    player_id=account.player_id,
                    currency_id="EUR",
                    amount=amount,
                    balance_after=account.balance,
                )

    return _timed((lambda i=i: post(i)) for i in range(count))


# One statement, the same rows and locks as a posting: lock both accounts in id order (the
# clearing account's new balance is only known once its lock is held), insert the header and
# both entries with balance_after, update both cached balances.
RAW_SQL = """
WITH locked AS (
    SELECT id, player_id, balance FROM payments_account
    WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE
), header AS (
    INSERT INTO payments_ledgertransaction (idempotency_key, kind, fingerprint, brand_id,
        player_id, object_type, object_id, description, reason_code, created_at)
    VALUES (%(key)s, 'deposit', '-', %(brand)s, %(player)s, '', '', '', '', now())
    RETURNING id
), legs AS (
    SELECT l.id, l.player_id, d.amount, l.balance + d.amount AS after
    FROM locked l JOIN (VALUES (%(clearing)s::bigint, -1), (%(cash)s::bigint, 1)) d(id, amount)
    ON d.id = l.id
), entries AS (
    INSERT INTO payments_ledgerentry (transaction_id, account_id, brand_id, player_id,
        currency_id, amount, balance_after, created_at)
    SELECT header.id, legs.id, %(brand)s, legs.player_id, 'EUR', legs.amount, legs.after, now()
    FROM header, legs
)
UPDATE payments_account a SET balance = legs.after FROM legs WHERE a.id = legs.id
"""


def _raw(world, worker, writers, count) -> list[float]:
    """The floor: psycopg in autocommit, one statement per posting."""
    from django.db import connection

    slots = _slots(world, worker, writers)
    conn = connection.connection
    conn.autocommit = True
    cur = conn.cursor()

    def post(i):
        slot = slots[i % len(slots)]
        cash = world["cash"][slot]
        return lambda: cur.execute(
            RAW_SQL,
            {
                "ids": sorted([world["clearing"], cash]),
                "key": f"raw:{world['round']}:{worker}:{i}",
                "brand": world["brand"],
                "player": world["players"][slot],
                "clearing": world["clearing"],
                "cash": cash,
            },
        )

    return _timed(post(i) for i in range(count))


BATCH = int(os.environ.get("BENCH_POSTINGS_BATCH", 100))

# raw SQL runs right before the hot account, so the two see the same load
WRITERS = {
    "spread": _spread,
    "raw SQL": _raw,
    "hot account": _hot,
    "hot, batched": _batched,
    "spread, batched": _spread_batched,
    "naive ORM": _naive,
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _run(scenario: str, world: dict, writers: int, postings: int) -> dict:
    """Rate over the span from the first writer's start to the last one's end, and the
    latency of one call."""
    import multiprocessing

    from django.db import connections

    per_writer = max(1, postings // writers)
    connections.close_all()  # children must not share the parent's socket
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(writers)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_writer,
            args=(scenario, world, w, writers, per_writer, barrier, results),
        )
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join()
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise RuntimeError(f"a {scenario} writer failed: {failed[0]!r}")
    done = sum(o[0] for o in outcomes)
    elapsed = max(o[2] for o in outcomes) - min(o[1] for o in outcomes)
    latencies = [x for o in outcomes for x in o[3]]
    return {
        "rate": done / elapsed,
        "p50_ms": 1000 * _percentile(latencies, 0.50),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postings", type=int, default=4000, help="Per scenario (default 4000).")
    parser.add_argument("--writers", type=int, default=8, help="Writer processes (default 8).")
    parser.add_argument("--players", type=int, default=500)
    parser.add_argument("--only", help="Comma-separated scenario names.")
    parser.add_argument(
        "--rounds", type=int, default=1, help="Run every scenario N times, report medians."
    )
    parser.add_argument("--keepdb", action="store_true", help="Keep the bench database.")
    parser.add_argument("--json", action="store_true", help="End with one JSON line of rates.")
    args = parser.parse_args()

    _setup_django()
    from django.conf import settings
    from django.db import connection

    settings.DATABASES["default"]["TEST"]["NAME"] = BENCH_DB
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=args.keepdb)
    try:
        from payments.ledger_check import find_ledger_problems

        world = _world(args.players)
        # names contain commas ("hot, batched"): pick those named anywhere in --only
        chosen = [s for s in WRITERS if not args.only or s in args.only]
        print(
            f"Ledger postings per second ({args.postings} postings per scenario, "
            f"{args.writers} writer processes, {os.cpu_count()} CPUs, PostgreSQL "
            f"{connection.pg_version // 10000}, median of {args.rounds} round(s))"
        )
        print(f"{'scenario':<14} {'writers':>7} {'postings/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
        runs: dict[str, list[dict]] = {s: [] for s in chosen}
        for round_ in range(args.rounds):
            for scenario in chosen:
                world["round"] = round_  # fresh idempotency keys each round
                runs[scenario].append(_run(scenario, world, args.writers, args.postings))
                if scenario != "naive ORM":  # its fingerprints are placeholders
                    problems = list(find_ledger_problems(limit_per_check=1))
                    if problems:
                        print(f"ledger check failed after {scenario}: {problems[0]}",
                              file=sys.stderr)  # fmt: skip
                        return 1
        figures = {}
        for scenario, results in runs.items():
            figures[scenario] = {
                k: statistics.median(r[k] for r in results) for k in ("rate", "p50_ms", "p99_ms")
            }
            f = figures[scenario]
            print(
                f"{scenario:<14} {args.writers:>7} {f['rate']:>11,.0f} {f['p50_ms']:>8.1f} "
                f"{f['p99_ms']:>8.1f}"
            )
        hot, raw = figures.get("hot account"), figures.get("raw SQL")
        if hot and raw:
            print(f"hot account / raw SQL: {hot['rate'] / raw['rate']:.0%} (target ≥ 80%)")
        if args.json:
            rates: dict[str, object] = {s: round(f["rate"]) for s, f in figures.items()}
            rates.update({f"{s} p99 ms": round(f["p99_ms"], 1) for s, f in figures.items()})
            rates["met"] = bool(
                hot and raw and hot["rate"] >= 0.8 * raw["rate"] and hot["p99_ms"] < 50
                and rates.get("spread", 0) >= 1500
                and max(rates.get("hot, batched", 0), rates.get("spread, batched", 0)) >= 10_000
            )  # fmt: skip
            rates["raw_sql"] = rates.pop("raw SQL", None)
            print(json.dumps(rates))
        return 0
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keepdb)


if __name__ == "__main__":
    sys.exit(main())
