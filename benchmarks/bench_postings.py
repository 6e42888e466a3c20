"""Ledger postings per second: `python -m benchmarks.bench_postings [--postings N] [--writers W]`.

Runs in a throwaway database (`bench_payments`, created and migrated here, dropped at the end
unless --keepdb) on the PostgreSQL of DATABASE_URL, with writer *processes* (as web and Celery
workers are), and prints one line per scenario:

- spread:        each posting moves money between its own pair of accounts (no contention);
- hot account:   every posting credits a player from the same PSP clearing account, the
                 classic SQL-ledger bottleneck (all writers queue on one row lock);
- hot, batched:  the same postings through `do_post_transfers_batch`, 100 per transaction;
- naive ORM:     the hot account through the pattern the house style forbids (get, +=, save:
                 one statement per row, two per entry), for comparison;
- raw SQL:       the hot account with the fewest statements psycopg can send (the floor).

Every scenario ends with `check_ledger` clean, or the script fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

BENCH_DB = "bench_payments"


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


def _writer(args) -> int:
    scenario, world, worker, count = args
    from django.db import connection

    connection.close()  # a connection of our own, never the parent's
    try:
        return WRITERS[scenario](world, worker, count)
    finally:
        connection.close()


def _spread(world, worker, count) -> int:
    from payments.services import ledger

    n = len(world["players"])
    for i in range(count):
        slot = (worker * count + i) % n
        ledger.do_post_transfer(
            idempotency_key=f"spread:{worker}:{i}",
            kind="win",
            legs=[(world["tables"][slot], -1), (world["cash"][slot], 1)],
            brand=world["brand"],
            player=world["players"][slot],
            timeline=False,
        )
    return count


def _hot(world, worker, count) -> int:
    from payments.services import ledger

    n = len(world["players"])
    for i in range(count):
        slot = (worker * count + i) % n
        ledger.do_post_transfer(
            idempotency_key=f"hot:{worker}:{i}",
            kind="deposit",
            legs=[(world["clearing"], -1), (world["cash"][slot], 1)],
            brand=world["brand"],
            player=world["players"][slot],
            timeline=False,
        )
    return count


def _batched(world, worker, count) -> int:
    from payments.services import ledger
    from payments.services.ledger import Leg, Transfer

    n = len(world["players"])
    done = 0
    while done < count:
        size = min(100, count - done)
        batch = []
        for i in range(done, done + size):
            slot = (worker * count + i) % n
            batch.append(
                Transfer(
                    idempotency_key=f"batch:{worker}:{i}",
                    kind="deposit",
                    legs=[Leg(world["clearing"], -1), Leg(world["cash"][slot], 1)],
                    brand_id=world["brand"],
                    player_id=world["players"][slot],
                    timeline=False,
                )
            )
        ledger.do_post_transfers_batch(batch)
        done += size
    return count


def _naive(world, worker, count) -> int:
    """What not to do: read-modify-write through model saves, one row at a time."""
    from django.db import transaction

    from payments.models import Account, LedgerEntry, LedgerTransaction

    n = len(world["players"])
    for i in range(count):
        slot = (worker * count + i) % n
        with transaction.atomic():
            ids = sorted([world["clearing"], world["cash"][slot]])
            accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids)}
            txn = LedgerTransaction.objects.create(
                idempotency_key=f"naive:{worker}:{i}",
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
    return count


def _raw(world, worker, count) -> int:
    """The floor: psycopg, no ORM, the same locks and rows, three statements a posting."""
    from django.db import connection

    n = len(world["players"])
    connection.ensure_connection()
    conn = connection.connection
    conn.autocommit = False
    with conn.cursor() as cur:
        for i in range(count):
            slot = (worker * count + i) % n
            cash = world["cash"][slot]
            cur.execute(
                "INSERT INTO payments_ledgertransaction (idempotency_key, kind, fingerprint, "
                "brand_id, player_id, object_type, object_id, description, reason_code, "
                "created_at) VALUES (%s, 'deposit', '-', %s, %s, '', '', '', '', now()) "
                "RETURNING id",
                [f"raw:{worker}:{i}", world["brand"], world["players"][slot]],
            )
            txn_id = cur.fetchone()[0]
            cur.execute(
                "SELECT id, balance FROM payments_account WHERE id = ANY(%s) ORDER BY id "
                "FOR UPDATE",
                [sorted([world["clearing"], cash])],
            )
            bal = dict(cur.fetchall())
            new_clearing, new_cash = bal[world["clearing"]] - 1, bal[cash] + 1
            cur.execute(
                "WITH e AS (INSERT INTO payments_ledgerentry (transaction_id, account_id, "
                "brand_id, player_id, currency_id, amount, balance_after, created_at) VALUES "
                "(%s, %s, %s, NULL, 'EUR', -1, %s, now()), (%s, %s, %s, %s, 'EUR', 1, %s, now())) "
                "UPDATE payments_account a SET balance = v.b FROM (VALUES (%s::bigint, "
                "%s::bigint), (%s::bigint, %s::bigint)) v(id, b) WHERE a.id = v.id",
                [txn_id, world["clearing"], world["brand"], new_clearing,
                 txn_id, cash, world["brand"], world["players"][slot], new_cash,
                 world["clearing"], new_clearing, cash, new_cash],
            )  # fmt: skip
            conn.commit()
    return count


WRITERS = {
    "spread": _spread,
    "hot account": _hot,
    "hot, batched": _batched,
    "naive ORM": _naive,
    "raw SQL": _raw,
}


def _run(scenario: str, world: dict, writers: int, postings: int) -> float:
    from django.db import connections

    per_writer = max(1, postings // writers)
    connections.close_all()  # children must not share the parent's socket
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=writers) as pool:
        done = sum(pool.map(_writer, [(scenario, world, w, per_writer) for w in range(writers)]))
    elapsed = time.perf_counter() - started
    return done / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postings", type=int, default=4000, help="Per scenario (default 4000).")
    parser.add_argument("--writers", type=int, default=8, help="Writer processes (default 8).")
    parser.add_argument("--players", type=int, default=500)
    parser.add_argument("--only", help="Comma-separated scenario names.")
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
        chosen = [s.strip() for s in args.only.split(",")] if args.only else list(WRITERS)
        print(
            f"Ledger postings per second ({args.postings} postings per scenario, "
            f"{args.writers} writer processes, {os.cpu_count()} CPUs, PostgreSQL "
            f"{connection.pg_version // 10000})"
        )
        print(f"{'scenario':<14} {'writers':>7} {'postings/s':>11}")
        rates: dict[str, float] = {}
        for scenario in chosen:
            writers = 1 if scenario == "hot, batched" and args.writers == 1 else args.writers
            rate = _run(scenario, world, writers, args.postings)
            print(f"{scenario:<14} {writers:>7} {rate:>11,.0f}", flush=True)
            rates[scenario] = round(rate)
            if scenario != "naive ORM":  # its fingerprints are placeholders, entries balance
                problems = list(find_ledger_problems(limit_per_check=1))
                if problems:
                    print(f"ledger check failed after {scenario}: {problems[0]}", file=sys.stderr)
                    return 1
        if args.json:
            hot, raw = rates.get("hot account"), rates.get("raw SQL")
            rates["met"] = bool(
                hot and raw and hot >= 0.8 * raw
                and rates.get("spread", 0) >= 1500 and rates.get("hot, batched", 0) >= 10_000
            )  # fmt: skip
            rates["raw_sql"] = rates.pop("raw SQL", None)
            print(json.dumps(rates))
        return 0
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keepdb)


if __name__ == "__main__":
    sys.exit(main())
