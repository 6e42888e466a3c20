"""PSP webhook intake and callback processing: `python -m benchmarks.bench_webhooks`.

Intake, the way production takes webhooks: gunicorn (2 sync workers, DEBUG off, the product's
middleware) serving the real app on a free port of 127.0.0.1, and `wrk` (a second process,
16 connections, `apt-get install wrk`) posting signed CardPay and OpenBank deliveries to it
for `--seconds`; deliveries accepted per second and p50/p99 latency. The ceiling, measured in
the same run the same way: the same gunicorn and settings with a bare Django view inserting one
row (`benchmarks/bare_urls.py`) in place of the product's URLconf. Each delivery is posted
once (distinct event ids), so every answer is a real insert, not a duplicate.

Then callback processing: `process_psp_inbox`'s `process_pending_events` (one process, the
rate of one Celery worker) applies every stored event to the ledger; events per second, and the
time a 100,000-event backlog would take at that rate. Then `check_ledger`. With
`--backlog 100000 --players 20000` there is no intake: that many events are stored in bulk
(as intake stores them) and the time to drain them all is measured.

Without wrk, or with `--in-process`, intake falls back to posting through Django's test client
from `--workers` processes (no HTTP server; not comparable with the target).

Runs in a throwaway database (BENCH_WEBHOOKS_DB, default `bench_payments`, dropped at the end
unless --keepdb). The Celery messages intake publishes are purged from the broker at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCH_DB = os.environ.get("BENCH_WEBHOOKS_DB", "bench_payments")


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings.test")
    import django

    django.setup()


def _world(players: int):
    from backoffice.models import Brand
    from payments.models import PaymentMethod, Psp
    from players.models import Player

    brand = Brand.objects.create(
        code="benchhooks", name="Bench hooks", jurisdiction="MT", default_currency="EUR"
    )
    card = Psp.objects.create(
        brand=brand, code="bench-cardpay", name="CardPay", adapter="cardpay",
        signing_keys={"current": "whsec-bench-0123456789abcdef"},
    )  # fmt: skip
    bank = Psp.objects.create(
        brand=brand, code="bench-openbank", name="OpenBank", adapter="openbank",
        signing_keys={"k1": "ob-bench-0123456789abcdef"},
    )  # fmt: skip
    PaymentMethod.objects.create(psp=card, brand=brand, kind="card", currency_id="EUR")
    PaymentMethod.objects.create(psp=bank, brand=brand, kind="open_banking", currency_id="EUR")
    Player.objects.bulk_create(
        Player(
            brand=brand, external_ref=f"H{i:06d}", username=f"hook{i}",
            email=f"hook{i}@example.test", first_name="Hook", last_name=f"P{i}",
            country="MT", currency="EUR",
        )
        for i in range(players)
    )  # fmt: skip
    return [card, bank]


def _deliveries(psps, count: int, players: int, prefix: str = "") -> list[dict]:
    """Signed deliveries: authorised then captured for count/2 deposits, alternating PSPs."""
    from payments.psp.base import PspEvent
    from payments.simulator import sign_delivery

    out = []
    for i in range(count // 2):
        psp = psps[i % 2]
        base = {
            "payment_kind": "deposit", "psp_reference": f"bench{prefix}_{i:07d}",
            "player_ref": f"H{i % players:06d}", "amount": 1_000 + i % 900, "currency": "EUR",
            "method": "card" if psp.adapter == "cardpay" else "open_banking", "country": "MT",
        }  # fmt: skip
        for n, status in enumerate(("authorised", "captured")):
            event = PspEvent(
                event_id=f"evt{prefix}_{i:07d}_{n}", event_type="", status=status, **base
            )
            out.append(sign_delivery(psp, event).as_record())
    return out


def _store_backlog(psps, count: int, players: int) -> None:
    """`count` events stored as intake stores them (bodies in each PSP's format), inserted in
    bulk: the backlog a worker finds after an outage, without posting it first."""
    from django.db import connection

    from payments.models import PspInboxEvent
    from payments.psp.base import PspEvent
    from payments.psp.registry import get_adapter

    rows = []
    for i in range(count // 2):
        psp = psps[i % 2]
        adapter = get_adapter(psp.adapter)
        base = {
            "payment_kind": "deposit", "psp_reference": f"backlog_{i:07d}",
            "player_ref": f"H{i % players:06d}", "amount": 1_000 + i % 900, "currency": "EUR",
            "method": "card" if psp.adapter == "cardpay" else "open_banking", "country": "MT",
        }  # fmt: skip
        for n, status in enumerate(("authorised", "captured")):
            event = PspEvent(event_id=f"bl_{i:07d}_{n}", event_type="", status=status, **base)
            body = adapter.encode(event, created=time.time())
            envelope = adapter.envelope(body)
            rows.append(
                (psp.pk, psp.brand_id, envelope.event_id, envelope.event_type,
                 envelope.psp_reference, body.decode())
            )  # fmt: skip
    table = PspInboxEvent._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 10_000):
            columns = [list(c) for c in zip(*rows[start : start + 10_000], strict=True)]
            cursor.execute(
                f"INSERT INTO {table} (psp_id, brand_id, event_id, event_type, psp_reference, "
                f"received_at, headers, body, status, attempts, result) "
                f"SELECT p, b, e, t, r, now(), '{{}}'::jsonb, x, 'pending', 0, '' "
                f"FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], "
                f"%s::text[]) AS v(p, b, e, t, r, x)",
                columns,
            )


def _post_in_process(chunk: list[dict]) -> int:
    from django.db import connection
    from django.test import Client

    connection.close()
    client = Client()
    ok = 0
    try:
        for d in chunk:
            extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in d["headers"].items()}
            extra.pop("HTTP_CONTENT_TYPE", None)
            response = client.post(
                d["path"], data=d["body"], content_type="application/json", **extra
            )
            ok += response.status_code == 200
    finally:
        connection.close()
    return ok


# -- gunicorn + wrk -------------------------------------------------------------------------

# wrk reads the deliveries (one a line: path, body, then header names and values, tab-separated)
# and posts each once, the threads taking turns through the list.
LUA = """
local threads = 0
setup = function(thread)
  thread:set("first", threads)
  threads = threads + 1
end
init = function(args)
  step = tonumber(args[2])
  i = first
  reqs = {}
  for line in io.lines(args[1]) do
    local f = {}
    for field in string.gmatch(line, "[^\t]+") do f[#f + 1] = field end
    local headers = {}
    for k = 3, #f, 2 do headers[f[k]] = f[k + 1] end
    reqs[#reqs + 1] = wrk.format("POST", f[1], headers, f[2])
  end
  n = #reqs
end
request = function()
  local r = reqs[(i % n) + 1]
  i = i + step
  return r
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "non2xx": %d, "errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db_url: str, urlconf: str, workers: int):
    """Start gunicorn on a free port; return (process, base URL) once it answers."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.webhook_settings",
        "BENCH_DATABASE_URL": db_url,
        "BENCH_ROOT_URLCONF": urlconf,
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "backoffice.wsgi:application",
            "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
            "--log-level", "warning", "--backlog", "2048",
        ],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {process.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(base + "/webhooks/psp/ping/", timeout=2)
        except urllib.error.HTTPError:
            return process, base  # 405: it answers
        except OSError:
            time.sleep(0.2)
            continue
        return process, base
    process.kill()
    raise RuntimeError("gunicorn did not answer within 60 s")


def _stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _warm(base: str, deliveries: list[dict]) -> None:
    """A few deliveries first, so each worker has loaded the app and opened its connections."""
    for d in deliveries:
        request = urllib.request.Request(
            base + d["path"], data=d["body"].encode(), headers=d["headers"], method="POST"
        )
        urllib.request.urlopen(request, timeout=10).read()


def _wrk(base: str, deliveries: list[dict], seconds: int, connections: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp, "post.lua"), Path(tmp, "deliveries.tsv")
        script.write_text(LUA)
        with data.open("w") as f:
            for d in deliveries:
                headers = [x for pair in d["headers"].items() for x in pair]
                f.write("\t".join([d["path"], d["body"], *headers]) + "\n")
        threads = 2
        done = subprocess.run(
            [
                "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                "-s", str(script), base, "--", str(data), str(threads),
            ],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line[len("WRKJSON ") :])
    seconds_run = result["duration_us"] / 1e6
    return {
        "requests": result["requests"],
        "per_s": result["requests"] / seconds_run,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "failed": result["non2xx"] + result["errors"],
    }


def _intake_over_http(args, psps, db_url: str) -> tuple[dict, dict, int, int]:
    """(ceiling, ours, warm-up deliveries, deliveries): the bare view and the product, served
    alike, in alternating rounds so that a change in the machine's load hits both; each figure
    is the median of its rounds."""
    from statistics import median

    from django.db import connection

    from .bare_urls import TABLE

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, psp_code varchar(40), "
            f"received_at timestamptz NOT NULL, body text NOT NULL)"
        )
    # Enough distinct deliveries for each round at well above the expected rate.
    per_round = max(args.deliveries // args.rounds, args.seconds * 3000)
    deliveries = _deliveries(psps, per_round * args.rounds, args.players)
    warm = _deliveries(psps, 40, args.players, prefix="w")
    runs: dict[str, list[dict]] = {"ceiling": [], "ours": []}
    for r in range(args.rounds):
        batch = deliveries[r * per_round : (r + 1) * per_round]
        for name, urlconf in (("ceiling", "benchmarks.bare_urls"), ("ours", "backoffice.urls")):
            process, base = _serve(db_url, urlconf, args.server_workers)
            try:
                _warm(base, warm)
                runs[name].append(_wrk(base, batch, args.seconds, args.connections))
            finally:
                _stop(process)
            if runs[name][-1]["requests"] > len(batch):
                print(f"(wrk posted more than the {len(batch):,} deliveries: some were "
                      "duplicates)", file=sys.stderr)  # fmt: skip
    for name, results in runs.items():
        print(f"  {name} rounds: " + ", ".join(
            f"{x['per_s']:,.0f}/s p99 {x['p99_ms']:.0f} ms" for x in results
        ), file=sys.stderr)  # fmt: skip
    summary = {
        name: {
            "per_s": median(x["per_s"] for x in results),
            "p50_ms": median(x["p50_ms"] for x in results),
            "p99_ms": median(x["p99_ms"] for x in results),
            "requests": sum(x["requests"] for x in results),
            "failed": sum(x["failed"] for x in results),
        }
        for name, results in runs.items()
    }
    return summary["ceiling"], summary["ours"], len(warm), len(deliveries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deliveries",
        type=int,
        default=4000,
        help="At least this many deliveries (intake posts for --seconds).",
    )
    parser.add_argument("--seconds", type=int, default=10, help="Length of each wrk run.")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds of each.")
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="Processes for --in-process.")
    parser.add_argument("--players", type=int, default=500)
    parser.add_argument("--in-process", action="store_true", help="No gunicorn: test client.")
    parser.add_argument(
        "--backlog", type=int, default=0,
        help="No intake: store this many events in bulk, then time draining them.",
    )  # fmt: skip
    parser.add_argument("--keepdb", action="store_true")
    parser.add_argument("--json", action="store_true", help="End with one JSON line of rates.")
    args = parser.parse_args()  # fmt: skip

    _setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    from backoffice.celery import app as celery_app
    from payments.ledger_check import find_ledger_problems
    from payments.models import PspInboxEvent
    from payments.services.psp_events import process_pending_events

    settings.DATABASES["default"]["TEST"]["NAME"] = BENCH_DB
    # Deliveries are signed up front; a slow run must not turn the last ones stale.
    settings.PAYMENTS_WEBHOOK_TOLERANCE_SECONDS = 3600
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=args.keepdb)
    celery_app.conf.task_always_eager = False  # a real hand-off to the broker, not inline
    over_http = not args.in_process and shutil.which("wrk") is not None
    if not args.in_process and not over_http:
        print("(wrk is not installed: intake measured in-process instead)", file=sys.stderr)
    out: dict = {}
    try:
        psps = _world(args.players)
        if args.backlog:
            _store_backlog(psps, args.backlog, args.players)
            print(f"Backlog: {args.backlog:,} events stored, {args.players:,} players")
            accepted_ok, intake_met = True, None
        elif over_http:
            db = settings.DATABASES["default"]
            db_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            connections.close_all()
            ceiling, ours, warm, count = _intake_over_http(args, psps, db_url)
            stored = PspInboxEvent.objects.count() - warm
            ratio = ours["per_s"] / ceiling["per_s"]
            print(
                f"Webhook intake (gunicorn, {args.server_workers} workers, wrk "
                f"{args.connections} connections, {args.rounds} rounds of {args.seconds} s, "
                f"medians, {os.cpu_count()} CPUs):\n"
                f"  bare insert view (ceiling): {ceiling['per_s']:,.0f}/s, "
                f"p50 {ceiling['p50_ms']:.1f} ms, p99 {ceiling['p99_ms']:.1f} ms\n"
                f"  webhook view (ours):        {ours['per_s']:,.0f}/s, "
                f"p50 {ours['p50_ms']:.1f} ms, p99 {ours['p99_ms']:.1f} ms "
                f"= {ratio:.0%} of the ceiling; {stored:,} stored, "
                f"{ours['failed'] + ceiling['failed']} failed"
            )
            accepted_ok = ours["failed"] == 0 and stored >= min(ours["requests"], count)
            out.update(
                intake_per_s=round(ours["per_s"]), ceiling_per_s=round(ceiling["per_s"]),
                intake_ratio=round(ratio, 2), p99_ms=round(ours["p99_ms"], 1),
                ceiling_p99_ms=round(ceiling["p99_ms"], 1),
            )  # fmt: skip
            intake_met = ratio >= 0.8 and ours["p99_ms"] < 50
        else:
            deliveries = _deliveries(psps, args.deliveries, args.players)
            chunks = [deliveries[i :: args.workers] for i in range(args.workers)]
            connections.close_all()
            started = time.perf_counter()
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                accepted = sum(pool.map(_post_in_process, chunks))
            intake = time.perf_counter() - started
            stored = PspInboxEvent.objects.count()
            print(
                f"Webhook intake (in-process, {args.workers} processes): {accepted:,} of "
                f"{len(deliveries):,} accepted in {intake:.1f} s = {accepted / intake:,.0f}/s; "
                f"{stored:,} stored"
            )
            accepted_ok = accepted == len(deliveries)
            out.update(intake_per_s=round(accepted / intake))
            intake_met = None
        started = time.perf_counter()
        counts = process_pending_events()
        applied = time.perf_counter() - started
        total = sum(counts.values())
        rate = total / applied
        print(
            f"Applying (process_psp_inbox, 1 worker): {total:,} events in {applied:.1f} s = "
            f"{rate:,.0f} events/s ({', '.join(f'{n:,} {s}' for s, n in counts.items())}); "
            f"a 100,000-event backlog at this rate: {100_000 / rate / 60:.1f} min"
        )
        problems = list(find_ledger_problems(limit_per_check=1))
        if problems or not accepted_ok:
            print(f"FAILED: {problems[:1]} accepted_ok={accepted_ok}", file=sys.stderr)
            return 1
        call_command("check_ledger")
        out.update(
            apply_per_s=round(rate), backlog_100k_min=round(100_000 / rate / 60, 1),
            met=bool(intake_met is not False and rate >= 400 and 100_000 / rate < 300),
        )  # fmt: skip
        if args.json:
            print(json.dumps(out))
        return 0
    finally:
        try:
            with celery_app.connection_for_write() as conn:
                conn.default_channel.queue_purge("celery")
        except Exception as exc:  # noqa: BLE001 - the broker may be down; say so and go on
            print(f"(could not purge the broker queue: {exc})", file=sys.stderr)
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keepdb)


if __name__ == "__main__":
    sys.exit(main())
