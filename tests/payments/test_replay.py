"""The replay property: a recorded `--callbacks-only` simulator run, replayed against a copy of
the database as it was before the run, each delivery 1-5 times in shuffled order from many
threads, then `process_psp_inbox`, ends with exactly the same balances and payment states."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from payments.ledger_check import find_ledger_problems
from payments.models import Account, LedgerTransaction, Payment, PaymentMethod
from payments.simulator import Delivery, Simulator, callback_targets
from tests.factories import PaymentMethodFactory, PlayerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# What a callbacks-only run can write. Restoring these restores "the database before the run".
RUN_TABLES = [
    "payments_account",
    "payments_historicalaccount",
    "payments_ledgertransaction",
    "payments_ledgerentry",
    "payments_payment",
    "payments_historicalpayment",
    "payments_paymenttransition",
    "payments_pspinboxevent",
    "payments_pspwebhookrejection",
    "players_timelineevent",
]


def _snapshot_tables() -> None:
    with connection.cursor() as cursor:
        for table in RUN_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS zz_copy_{table}")
            cursor.execute(f"CREATE TABLE zz_copy_{table} AS SELECT * FROM {table}")


def _restore_tables() -> None:
    """Put the copied rows back, as a database restored from a backup would have them (rows
    are deleted with triggers off: the append-only rule is for the application, not for a
    restore)."""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SET LOCAL session_replication_role = replica")
        for table in RUN_TABLES:
            cursor.execute(f"DELETE FROM {table}")
            cursor.execute(f"INSERT INTO {table} SELECT * FROM zz_copy_{table}")
            cursor.execute(f"DROP TABLE zz_copy_{table}")
        cursor.execute("COMMIT")


def _state():
    balances = {
        (a.player.external_ref if a.player_id else None, a.brand_id, a.kind, a.ref, a.currency_id):
            a.balance
        for a in Account.objects.select_related("player")
    }  # fmt: skip
    payments = {
        (p.psp.code, p.psp_reference): (p.status, p.amount, p.currency_id, p.player.external_ref)
        for p in Payment.objects.select_related("psp", "player")
    }
    kinds = Counter(LedgerTransaction.objects.values_list("kind", flat=True))
    return balances, payments, kinds


def _post(client: Client, d: Delivery) -> int:
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in d.headers.items()}
    extra.pop("HTTP_CONTENT_TYPE", None)
    return client.post(d.path, data=d.body, content_type="application/json", **extra).status_code


@pytest.fixture
def world(brand_a, card_psp, bank_psp, card_method, credited_deposit):
    PaymentMethodFactory(psp=bank_psp, kind=PaymentMethod.Kind.OPEN_BANKING, currency_id="EUR")
    players = [PlayerFactory(brand=brand_a, currency="EUR", country="MT") for _ in range(8)]
    for p in players[:4]:
        credited_deposit(p, 10_000)  # some history before the run
    players[5].block_deposits = True
    players[5].save()
    return [card_psp, bank_psp]


def test_replayed_callbacks_end_in_the_same_state(world):
    recorded: list[Delivery] = []
    client = Client()
    sim = Simulator(lambda d: _post(client, d), seed=1234, concurrency=1, record=recorded.append)
    targets = callback_targets(world)
    plan_actions = Counter()
    _snapshot_tables()
    from payments.simulator import Plan

    plan = Plan()
    for _ in range(60):
        psp, method, players = sim.rng.choice(targets)
        sim.callback_deposit(psp, method, sim.rng.choice(players), plan)
    plan_actions.update(plan.actions)
    answers = sim.run_plan(plan)
    assert set(answers) == {200}
    call_command("process_psp_inbox")
    original = _state()
    # the run did a bit of everything
    statuses = Counter(s for s, *_ in original[1].values())
    assert statuses["credited"] and statuses["failed"]
    assert plan_actions["deposit_success"] > 30 and len(recorded) > 120

    _restore_tables()
    assert _state() != original

    rng = random.Random(99)
    stream = [d for d in recorded for _ in range(rng.randint(1, 5))]
    rng.shuffle(stream)
    connection.close()
    lock = threading.Lock()
    answers = Counter()

    def worker(chunk):
        try:
            thread_client = Client()
            for d in chunk:
                code = _post(thread_client, d)
                with lock:
                    answers[code] += 1
        finally:
            connection.close()

    chunks = [stream[i::8] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, chunks))
    assert set(answers) == {200}
    call_command("process_psp_inbox")
    assert _state() == original
    assert list(find_ledger_problems()) == []
