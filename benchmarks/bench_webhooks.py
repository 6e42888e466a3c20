"""PSP webhook intake: `python -m benchmarks.bench_webhooks [--deliveries N] [--workers W]`.

Measures deliveries *accepted* per second: signed CardPay and OpenBank callbacks posted through
the whole Django stack (middleware, URL routing, signature check, inbox insert, Celery hand-off
on commit to the Redis of REDIS_URL) by W worker processes, the way W web workers would take
them. Then it measures how fast `process_psp_inbox` applies what was stored (the sweeper's rate,
one worker), and checks the ledger.

With `--base-url http://host:port` the deliveries go over HTTP to a running server instead
(the server must use the same database, which must hold the bench PSPs: run once without
--base-url and --keepdb first).

Runs in a throwaway database (`bench_payments`, dropped at the end unless --keepdb). The Celery
messages it enqueues are purged from the broker at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

BENCH_DB = "bench_payments"


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


def _deliveries(psps, count: int, players: int) -> list[dict]:
    """Signed deliveries: authorised then captured for count/2 deposits, alternating PSPs."""
    from payments.psp.base import PspEvent
    from payments.simulator import sign_delivery

    out = []
    for i in range(count // 2):
        psp = psps[i % 2]
        base = {
            "payment_kind": "deposit", "psp_reference": f"bench_{i:07d}",
            "player_ref": f"H{i % players:06d}", "amount": 1_000 + i % 900, "currency": "EUR",
            "method": "card" if psp.adapter == "cardpay" else "open_banking", "country": "MT",
        }  # fmt: skip
        for n, status in enumerate(("authorised", "captured")):
            event = PspEvent(event_id=f"evt_{i:07d}_{n}", event_type="", status=status, **base)
            out.append(sign_delivery(psp, event).as_record())
    return out


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


def _post_http(base_url: str, chunk: list[dict]) -> int:
    import requests

    session = requests.Session()
    ok = 0
    for d in chunk:
        response = session.post(
            base_url + d["path"], data=d["body"].encode(), headers=d["headers"], timeout=30
        )
        ok += response.status_code == 200
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=4, help="Posting processes (default 4).")
    parser.add_argument("--players", type=int, default=500)
    parser.add_argument("--base-url", help="Post over HTTP to a running server instead.")
    parser.add_argument("--keepdb", action="store_true")
    parser.add_argument("--json", action="store_true", help="End with one JSON line of rates.")
    args = parser.parse_args()

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
    try:
        psps = _world(args.players)
        deliveries = _deliveries(psps, args.deliveries, args.players)
        chunks = [deliveries[i :: args.workers] for i in range(args.workers)]
        connections.close_all()
        started = time.perf_counter()
        if args.base_url:
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                accepted = sum(pool.map(lambda c: _post_http(args.base_url, c), chunks))
        else:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                accepted = sum(pool.map(_post_in_process, chunks))
        intake = time.perf_counter() - started
        stored = PspInboxEvent.objects.count()
        print(
            f"Webhook intake: {accepted:,} of {len(deliveries):,} deliveries accepted in "
            f"{intake:.1f} s = {accepted / intake:,.0f} deliveries/s "
            f"({args.workers} {'HTTP clients' if args.base_url else 'worker processes'}, "
            f"{os.cpu_count()} CPUs); {stored:,} stored"
        )
        started = time.perf_counter()
        counts = process_pending_events()
        applied = time.perf_counter() - started
        total = sum(counts.values())
        print(
            f"Applying (process_psp_inbox, 1 worker): {total:,} events in {applied:.1f} s = "
            f"{total / applied:,.0f} events/s ({dict(counts)})"
        )
        problems = list(find_ledger_problems(limit_per_check=1))
        if problems or accepted != len(deliveries):
            print(f"FAILED: {problems[:1]} accepted={accepted}", file=sys.stderr)
            return 1
        call_command("check_ledger")
        if args.json:
            intake_rate, apply_rate = accepted / intake, total / applied
            print(json.dumps({
                "intake_per_s": round(intake_rate), "apply_per_s": round(apply_rate),
                "met": apply_rate >= 400,
            }))  # fmt: skip
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
