"""Reconciling a settlement report: `python -m benchmarks.bench_reconcile [--lines N]`.

Builds, in a throwaway database (`bench_reconcile`, or BENCH_RECONCILE_DB when several runs
share a server; created and migrated here, dropped at the end unless --keepdb) on the
PostgreSQL of DATABASE_URL, N payments through one card PSP and that PSP's settlement report
of N lines (written with COPY ... TO, with a few planted breaks of every class), then
measures, each in a fresh process:

- reconcile:  the real command (`manage.py reconcile <psp> <file>`, called in the process):
              COPY into staging, every line checked and classified, exceptions upserted, in
              one transaction;
- floor:      COPY of the same file into a temporary table plus one join that counts the
              matched lines: the least any reconciliation in PostgreSQL can do.

For each: wall-clock seconds and the process's peak resident memory (VmHWM) and how much of it
is above the same process's memory before the run. With --small N (default 10,000) a second
report of N lines is reconciled too, to show that the peak does not grow with the lines:
nothing walks the lines in Python.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

# Its own name per engineer or CI job when several run at once (BENCH_RECONCILE_DB).
BENCH_DB = os.environ.get("BENCH_RECONCILE_DB", "bench_reconcile")
PSP_CODE = "bench-cardpay"


def _setup_django(media_root: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings.test")
    import django

    django.setup()
    from django.conf import settings

    # A file the child processes can read (the test settings keep files in memory).
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.MEDIA_ROOT = media_root


def _memory_mb() -> tuple[float, float]:
    """(resident now, peak resident) of this process, in MB.

    The peak is the kernel's high-water mark of this process's own memory (VmHWM), not
    getrusage's ru_maxrss: that one survives exec, so a child started by the parent (which
    built a million payments) reported the parent's peak as its own."""
    try:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except OSError:  # not Linux: the best there is
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


# -- building the data (parent process) -----------------------------------------------------


def _build(lines: int, *, psp_code: str = PSP_CODE, prefix: str = "") -> int:
    """N payments (3 deposits credited for 1 withdrawal paid) through one PSP; returns its id."""
    from importlib import import_module

    from django.db import connection

    from backoffice.models import Brand
    from payments.models import Currency, Psp
    from players.models import Player

    migration = import_module("payments.migrations.0003_currencies")
    for code, name, exponent, crypto in migration.CURRENCIES:
        Currency.objects.get_or_create(
            code=code, defaults={"name": name, "exponent": exponent, "is_crypto": crypto}
        )
    brand, _ = Brand.objects.get_or_create(code="bench", defaults={
        "name": "Bench", "jurisdiction": "MT", "default_currency": "EUR"})  # fmt: skip
    psp = Psp.objects.create(
        brand=brand, code=psp_code, name=f"Bench {psp_code}", adapter="cardpay"
    )
    player, _ = Player.objects.get_or_create(brand=brand, external_ref="B1", defaults={
        "username": "bench1", "email": "b@example.test", "first_name": "B", "last_name": "B",
        "country": "MT", "currency": "EUR"})  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO payments_payment (kind, brand_id, player_id, psp_id, method_kind,
                country, currency_id, amount, reference, psp_reference, instrument,
                instrument_fingerprint, status, status_reason, status_changed_at, created_at,
                psp_note)
            SELECT CASE WHEN i %% 4 = 0 THEN 'withdrawal' ELSE 'deposit' END,
                   %(brand)s, %(player)s, %(psp)s, 'card', 'MT', 'EUR',
                   1000 + (i::bigint * 7919) %% 1000000,
                   %(prefix)s || CASE WHEN i %% 4 = 0 THEN 'W-' ELSE 'D-' END
                     || lpad(i::text, 10, '0'),
                   %(prefix)s || 'ch_' || lpad(i::text, 10, '0'), '', '',
                   CASE WHEN i %% 4 = 0 THEN 'paid' ELSE 'credited' END, '',
                   timestamptz '2026-03-02 00:00:00+00',
                   timestamptz '2026-03-02 00:00:00+00' + make_interval(secs => i %% 86000),
                   ''
            FROM generate_series(1, %(n)s) AS i
            """,
            {
                "brand": brand.pk,
                "player": player.pk,
                "psp": psp.pk,
                "n": lines,
                "prefix": prefix,
            },  # fmt: skip
        )
        cursor.execute("ANALYZE payments_payment")
    return psp.pk


# Planted breaks, a few of each class per million lines.
REPORT_SQL = """
COPY (
    SELECT psp_reference AS id, reference AS merchant_reference,
           CASE kind WHEN 'deposit' THEN 'payment' ELSE 'payout' END AS type,
           amount + CASE WHEN id %% 100003 = 7 THEN 1 ELSE 0 END AS amount,
           CASE WHEN id %% 200003 = 11 THEN 'USD' ELSE currency_id END AS currency,
           CASE WHEN id %% 300007 = 13 AND kind = 'deposit' THEN 'refunded'
                WHEN id %% 300007 = 13 THEN 'failed'
                WHEN kind = 'deposit' THEN 'captured' ELSE 'paid' END AS status,
           to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created
    FROM payments_payment
    WHERE psp_id = {psp} AND id %% 250007 <> 17
    UNION ALL
    SELECT psp_reference, reference, 'payment', amount, currency_id, 'captured',
           to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    FROM payments_payment WHERE psp_id = {psp} AND kind = 'deposit' AND id %% 400009 = 19
    UNION ALL
    SELECT 'ghost_' || g, '', 'payment', 1234, 'EUR', 'captured', '2026-03-02T12:00:00Z'
    FROM generate_series(1, 3) AS g
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def _write_report(psp_id: int, path: str) -> int:
    from django.db import connection

    size = 0
    sql = REPORT_SQL.format(psp=int(psp_id)).replace("%%", "%")
    with open(path, "wb") as out, connection.cursor() as cursor, cursor.copy(sql) as copy:
        for chunk in copy:
            out.write(chunk)
            size += len(chunk)
    return size


def _upload(psp_id: int, path: str) -> int:
    from payments.models import Psp
    from payments.services.reconciliation import do_upload_settlement_report

    with open(path, "rb") as stream:
        report, _ = do_upload_settlement_report(
            Psp.objects.get(pk=psp_id), stream=stream, name=os.path.basename(path),
            acting_user=None, enqueue=False,
        )  # fmt: skip
    return report.pk


# -- the measured runs (child processes) ----------------------------------------------------


def _child_reconcile(report_id: int, code: str, path: str) -> dict:
    """`manage.py reconcile <code> <path>` in this process: the same file as the report the
    parent uploaded, so the command finds that report and runs it (again)."""
    from io import StringIO

    from django.core.management import call_command

    from payments.models import SettlementReport

    before, _ = _memory_mb()
    start = time.perf_counter()
    call_command("reconcile", code, path, "--json", stdout=StringIO(), stderr=StringIO())
    seconds = time.perf_counter() - start
    _, peak = _memory_mb()
    report = SettlementReport.objects.get(pk=report_id)
    return {"seconds": seconds, "peak_mb": peak, "before_mb": before,
            "status": report.status, "counts": report.counts, "lines": report.line_count,
            "failure": report.failure or report.errors[:3]}  # fmt: skip


FLOOR_JOIN = """
SELECT count(*) FILTER (WHERE p.id IS NOT NULL AND p.amount = r.amount::bigint
                          AND p.currency_id = r.currency),
       count(*)
FROM recon_floor r
LEFT JOIN payments_payment p ON p.psp_id = %s AND p.psp_reference = r.id
"""


def _child_floor(psp_id: int, path: str) -> dict:
    from django.db import connection, transaction

    before, _ = _memory_mb()
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            "CREATE TEMP TABLE recon_floor (id text, merchant_reference text, type text, "
            "amount text, currency text, status text, created text) ON COMMIT DROP"
        )
        with (
            open(path, "rb") as stream,
            cursor.copy("COPY recon_floor FROM STDIN WITH (FORMAT csv, HEADER)") as copy,
        ):
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                copy.write(chunk)
        cursor.execute(FLOOR_JOIN, [psp_id])
        matched, lines = cursor.fetchone()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _memory_mb()[1], "before_mb": before, "lines": lines,
            "matched": matched}  # fmt: skip


def _run_child(*args: str) -> dict:
    env = {**os.environ, "BENCH_RECONCILE_CHILD": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_reconcile", *args],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> int:
    kind, media_root = argv[0], argv[1]
    _setup_django(media_root)
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = BENCH_DB
    if kind == "reconcile":
        result = _child_reconcile(int(argv[2]), argv[3], argv[4])
    else:
        result = _child_floor(int(argv[2]), argv[3])
    print(json.dumps(result, default=str))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="Default 1,000,000.")
    parser.add_argument(
        "--small", type=int, default=10_000,
        help="Also reconcile a report of this many lines, to compare peak memory (default "
        "10,000; 0: skip).",
    )  # fmt: skip
    parser.add_argument("--keepdb", action="store_true", help="Keep the bench database.")
    parser.add_argument("--json", action="store_true", help="End with one JSON line of figures.")
    args = parser.parse_args()

    media_root = tempfile.mkdtemp(prefix="bench-reconcile-")
    _setup_django(media_root)
    from django.conf import settings
    from django.db import connection

    settings.DATABASES["default"]["TEST"]["NAME"] = BENCH_DB
    # A fresh database every time (--keepdb only leaves it behind for a look afterwards).
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        t = time.perf_counter()
        psp_id = _build(args.lines)
        path = os.path.join(media_root, "settlement.csv")
        size = _write_report(psp_id, path)
        report_id = _upload(psp_id, path)
        small = None
        if args.small:
            small_psp = _build(args.small, psp_code=f"{PSP_CODE}-small", prefix="S")
            small_path = os.path.join(media_root, "settlement-small.csv")
            _write_report(small_psp, small_path)
            small = (str(_upload(small_psp, small_path)), f"{PSP_CODE}-small", small_path)
        connection.close()
        print(
            f"Reconciling a settlement report of {args.lines:,} payments "
            f"({size / 1e6:.0f} MB; built in {time.perf_counter() - t:.0f} s), "
            f"{os.cpu_count()} CPUs, PostgreSQL {connection.pg_version // 10000}"
        )
        floor = _run_child("floor", media_root, str(psp_id), path)
        real = _run_child("reconcile", media_root, str(report_id), PSP_CODE, path)
        if real["status"] != "done":
            print(f"The run did not finish: {real['status']} {real['failure']}", file=sys.stderr)
            return 1
        print(f"{'run':<34} {'lines':>10} {'seconds':>8} {'peak RSS':>9} {'above start':>12}")
        for label, r in (("reconcile (COPY, checks, classes)", real),
                         ("floor (COPY + one join)", floor)):  # fmt: skip
            print(f"{label:<34} {r['lines']:>10,} {r['seconds']:>8.1f} "
                  f"{r['peak_mb']:>6.0f} MB {r['peak_mb'] - r['before_mb']:>9.0f} MB")  # fmt: skip
        counts = {k: v for k, v in real["counts"].items() if v}
        print(f"classes: {json.dumps(counts)}")
        compared = None
        if small:
            few = _run_child("reconcile", media_root, *small)
            compared = real["peak_mb"] - few["peak_mb"]
            print(f"peak RSS of the reconcile process: {few['peak_mb']:.0f} MB at "
                  f"{few['lines']:,} lines, {real['peak_mb']:.0f} MB at {real['lines']:,} "
                  f"lines ({compared:+.0f} MB); {few['before_mb']:.0f} MB before it ran")  # fmt: skip
        if args.json:
            print(json.dumps({
                "seconds": round(real["seconds"], 2), "peak_mb": round(real["peak_mb"]),
                "above_start_mb": round(real["peak_mb"] - real["before_mb"]),
                "floor": {"seconds": round(floor["seconds"], 2), "peak_mb": round(floor["peak_mb"])},
                "small": None if not small else {"lines": few["lines"],
                                                 "peak_mb": round(few["peak_mb"])},
                "peak_above_small_mb": None if compared is None else round(compared),
                "met": real["seconds"] < 10 and real["peak_mb"] < 100
                       and (compared is None or compared <= 20),
            }))  # fmt: skip
        return 0
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keepdb)
        if not args.keepdb:  # the reports (75 MB at a million lines)
            shutil.rmtree(media_root, ignore_errors=True)


if __name__ == "__main__":
    if os.environ.get("BENCH_RECONCILE_CHILD"):
        sys.exit(child_main(sys.argv[1:]))
    sys.exit(main())
