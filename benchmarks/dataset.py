"""Build the benchmark dataset: `make bench-data SCALE=S|M|L`.

Writes into its own database (BENCH_DATABASE_URL, default backoffice_bench), migrated first.
Every table is filled set-based inside PostgreSQL (see sqlgen.py); a run records the scale it
built in `bench_meta`, and a later run at the same scale reuses the data.

Scales: S is the CI smoke test, M a mid-size operator, L the target of the benchmark issue
(1,000,000 players over 3 brands, 5,000,000 payments, 20,000,000 ledger entries, 200,000
tickets). One "heavy" player has 100,000 timeline events at every scale.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

HEAVY_EVENTS = 100_000


@dataclass(frozen=True)
class Scale:
    name: str
    players: int
    events_per_player: int
    tickets: int
    audit_rows: int
    payments: int
    entries_per_payment: int


SCALES = {
    "S": Scale("S", 10_000, 3, 2_000, 100_000, 50_000, 4),
    "M": Scale("M", 100_000, 3, 20_000, 1_000_000, 500_000, 4),
    "L": Scale("L", 1_000_000, 3, 200_000, 1_000_000, 5_000_000, 4),
}


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings.bench")
    import django

    django.setup()


def ensure_database() -> None:
    """Create the bench database if it does not exist, then migrate it."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "dbname": "postgres",
    }
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    with psycopg.connect(**params, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0)


def built_scale() -> str | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
        cursor.execute("SELECT value FROM bench_meta WHERE key = 'scale'")
        row = cursor.fetchone()
    return row[0] if row else None


def _our_tables() -> list[str]:
    from django.apps import apps
    from django.conf import settings

    return [
        m._meta.db_table
        for m in apps.get_models(include_auto_created=True)
        if m._meta.app_label in settings.OUR_APPS and not m._meta.proxy and m._meta.managed
    ]


def _truncate_all() -> None:
    from django.db import connection

    # Reference rows that migrations seed stay: currencies, note reasons.
    keep = {"payments_currency", "players_notereason"}
    tables = [t for t in _our_tables() if t not in keep]
    tables += ["guardian_userobjectpermission", "guardian_groupobjectpermission", "django_session"]
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
        )


def build(scale: Scale, *, stdout=sys.stdout) -> dict[str, float]:
    """Fill every table for `scale`; returns seconds per step.

    Secondary indexes, unique constraints and foreign keys are dropped while the rows go in
    and rebuilt once at the end (see sqlgen.defer_constraints); the session skips waiting for
    each commit's WAL flush and gives sorts and index builds room.
    """
    from django.db import connection, transaction

    from . import builders
    from .sqlgen import defer_constraints, restore_constraints

    timings: dict[str, float] = {}

    def step(name, func, *args, atomic=True):
        started = time.perf_counter()
        if atomic:
            with transaction.atomic():
                rows = func(*args)
        else:
            rows = func(*args)
        timings[name] = round(time.perf_counter() - started, 2)
        stdout.write(f"  {name:<28} {rows or 0:>12,} rows  {timings[name]:>7.1f} s\n")
        stdout.flush()

    def report(sql, seconds):
        if seconds >= 1:
            stdout.write(f"    {seconds:6.1f} s  {sql[:100]}\n")
            stdout.flush()

    stdout.write(f"Building scale {scale.name} into {connection.settings_dict['NAME']}\n")
    with connection.cursor() as cursor:
        # The data can be rebuilt, so a crash losing the last commits costs nothing.
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET work_mem = '256MB'")
        # Until the build finishes, the database holds no complete scale.
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
        cursor.execute("DELETE FROM bench_meta WHERE key = 'scale'")
    step("reset", _truncate_all)
    # A build interrupted earlier may have left indexes dropped: put them back on empty tables.
    step("restore leftovers", restore_constraints, None, atomic=False)
    step("drop indexes and keys", defer_constraints, _our_tables())
    for name, func in builders.steps(scale):
        step(name, func, scale)
    step("indexes and keys", restore_constraints, report, atomic=False)
    started = time.perf_counter()
    connection.ensure_connection()
    raw = connection.connection  # VACUUM cannot run inside a transaction block
    previous, raw.autocommit = raw.autocommit, True
    try:
        with raw.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
    finally:
        raw.autocommit = previous
    timings["vacuum_analyze"] = round(time.perf_counter() - started, 2)
    stdout.write(f"  {'vacuum analyze':<28} {'':>12}       {timings['vacuum_analyze']:>7.1f} s\n")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_meta VALUES ('scale', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [scale.name],
        )
        cursor.execute("RESET synchronous_commit; RESET maintenance_work_mem; RESET work_mem")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default=os.environ.get("SCALE", "S"), choices=sorted(SCALES))
    parser.add_argument("--force", action="store_true", help="rebuild even if built already")
    args = parser.parse_args(argv)
    setup_django()
    ensure_database()
    if built_scale() == args.scale and not args.force:
        print(f"Scale {args.scale} is already built; --force rebuilds it.")
        return 0
    started = time.perf_counter()
    build(SCALES[args.scale])
    print(f"Scale {args.scale} built in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
