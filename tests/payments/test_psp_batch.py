"""The PSP inbox applied in batches: the same outcome as one event at a time, a flat number of
queries per batch, a row-by-row fallback, the debounced drain task and the intake's PSP cache."""

from __future__ import annotations

import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.ledger_check import find_ledger_problems
from payments.models import (
    Account,
    LedgerTransaction,
    Payment,
    PspInboxEvent,
    PspWebhookRejection,
)
from payments.psp.base import PspEvent
from payments.services.psp_events import (
    do_apply_psp_event,
    do_receive_psp_webhook,
    process_pending_events,
)
from payments.simulator import sign_delivery
from payments.tasks import enqueue_event
from players.models import TimelineEvent
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_hand_off(monkeypatch):
    """Rows stay pending after intake: each test applies them itself."""
    monkeypatch.setattr("payments.tasks.enqueue_event", lambda inbox_id: True)


def _receive(psp, event: PspEvent, *, now=None):
    d = sign_delivery(psp, event, now=now)
    return do_receive_psp_webhook(
        psp.code, method=d.method, path=d.path, headers=d.headers, body=d.body.encode()
    )


def _ev(prefix, n, ref, player, status, amount=2500, **extra) -> PspEvent:
    fields = {
        "event_id": f"{prefix}evt_{n}", "event_type": "", "payment_kind": "deposit",
        "status": status, "psp_reference": f"{prefix}{ref}", "player_ref": player.external_ref,
        "amount": amount, "currency": "EUR", "method": "card", "country": "MT",
    }  # fmt: skip
    fields.update(extra)
    return PspEvent(**fields)


def _stream(psp, prefix: str, players: list) -> None:
    """Every kind of event, out of order and mixed, stored in the inbox in this order."""
    a, b, c, blocked = players
    nobody = type("Nobody", (), {"external_ref": "NOPE"})()
    plan = [
        ("p1", a, "authorised", {}),
        ("p1", a, "captured", {}),
        ("p2", b, "captured", {}),
        ("p2", b, "authorised", {}),  # late: no change
        ("p3", c, "authorised", {}),
        ("p3", c, "failed", {"reason": "do_not_honor"}),
        ("p4", a, "captured", {"amount": 4000}),
        ("p4", a, "refunded", {"amount": 4000}),  # row by row: money back
        ("p5", blocked, "captured", {}),  # row by row: refused
        ("p6", nobody, "captured", {}),  # no such player
        ("p7", b, "authorised", {}),
        ("p7", b, "captured", {"amount": 9}),  # amount mismatch
        ("p8", c, "captured", {"amount": 700}),
        ("p8", c, "charged_back", {"amount": 700}),  # row by row
        ("p9", a, "expired", {}),
        ("p1", a, "failed", {}),  # contradicts: left for a human
    ]
    for n, (ref, player, status, extra) in enumerate(plan):
        _receive(psp, _ev(prefix, n, ref, player, status, **extra))


def _outcome(psp, prefix: str, players: list):
    def norm(text: str) -> str:  # our references and player ids differ between the worlds
        return re.sub(r"#\d+", "#N", re.sub(r"D-[0-9A-F]{12}", "D-X", text.replace(prefix, "")))

    inbox = [
        (e.event_id.replace(prefix, ""), e.status, norm(e.result), e.attempts)
        for e in PspInboxEvent.objects.filter(event_id__startswith=prefix).order_by("id")
    ]
    payments = {}
    for p in Payment.objects.filter(psp_reference__startswith=prefix):
        facts = (
            p.status,
            p.status_reason,
            p.psp_note,
            p.amount,
            players.index(p.player),
            list(
                p.transitions.values_list(
                    "from_status", "to_status", "actor_kind", "reason_code", "note"
                )
            ),
            list(
                LedgerTransaction.objects.filter(
                    object_id=str(p.pk), object_type="payments.deposit"
                )
                .order_by("id")
                .values_list("kind", "description")
            ),
            PspInboxEvent.objects.filter(payment=p).count(),
        )
        payments[norm(p.psp_reference)] = norm(repr(facts))
    balances = [
        sorted(Account.objects.filter(player=pl).values_list("kind", "balance")) for pl in players
    ]
    timeline = [
        sorted(TimelineEvent.objects.filter(player=pl).values_list("action", "actor_label"))
        for pl in players
    ]
    history_accounts = [
        Account.history.filter(player_id=pl.pk, history_type="+").count() for pl in players
    ]
    return inbox, payments, balances, timeline, history_accounts


def _players(brand, blocked_index=3):
    players = [PlayerFactory(brand=brand, currency="EUR", country="MT") for _ in range(4)]
    players[blocked_index].block_deposits = True
    players[blocked_index].save()
    return players


def test_a_batch_ends_exactly_where_one_event_at_a_time_ends(card_method, brand_a, caplog):
    psp = card_method.psp
    one_by_one, batched = _players(brand_a), _players(brand_a)
    _stream(psp, "a_", one_by_one)
    for pk in (
        PspInboxEvent.objects.filter(event_id__startswith="a_")
        .order_by("id")
        .values_list("pk", flat=True)
    ):
        do_apply_psp_event(pk)
    _stream(psp, "b_", batched)
    with caplog.at_level("ERROR", logger="payments.services.psp_batch"):
        counts = process_pending_events(batch_size=100)
    assert sum(counts.values()) == 16
    assert "one by one" not in caplog.text  # the set-based path took what it could
    expected = _outcome(psp, "a_", one_by_one)
    got = _outcome(psp, "b_", batched)
    assert got == expected
    assert "'refunded'" in expected[1]["p4"] and "'deposits_blocked'" in expected[1]["p5"]
    assert list(find_ledger_problems()) == []
    # The batch keeps each payment's change history: created, then one version per event
    # that moved it (saving a Deposit proxy one event at a time records none of these).
    p1 = Payment.objects.get(psp_reference="b_p1")
    versions = Payment.history.filter(id=p1.pk).order_by("history_id")
    assert [(h.history_type, h.status) for h in versions] == [
        ("+", "initiated"), ("~", "authorised"), ("~", "credited")
    ]  # fmt: skip


def test_events_of_one_payment_split_across_batches_still_apply_in_order(card_method, player):
    psp = card_method.psp
    for n, status in enumerate(["authorised", "captured", "refunded"]):
        _receive(psp, _ev("s_", n, "p1", player, status))
    assert process_pending_events(batch_size=1) == {"applied": 3}
    assert Payment.objects.get().status == "refunded"
    assert list(find_ledger_problems()) == []


def test_a_batch_costs_the_same_queries_for_10_or_60_events(card_method, brand_a):
    psp = card_method.psp

    def queries_for(n: int, prefix: str) -> int:
        players = [PlayerFactory(brand=brand_a, currency="EUR", country="MT") for _ in range(n)]
        for i, pl in enumerate(players):
            _receive(psp, _ev(prefix, i, f"p{i}", pl, "captured"))
        with CaptureQueriesContext(connection) as ctx:
            assert process_pending_events() == {"applied": n}
        return len(ctx.captured_queries)

    queries_for(1, "w_")  # the PSP's clearing account is created on the first credit
    small, large = queries_for(10, "q_"), queries_for(60, "r_")
    assert small == large
    assert large <= 25
    assert Payment.objects.filter(status="credited").count() == 71


def test_a_failing_batch_is_applied_row_by_row(card_method, player, monkeypatch):
    from payments.services import psp_batch

    def boom(self, groups):
        raise RuntimeError("timeline down")

    monkeypatch.setattr(psp_batch._Batch, "_timeline", boom)
    psp = card_method.psp
    _receive(psp, _ev("f_", 1, "p1", player, "authorised"))
    _receive(psp, _ev("f_", 2, "p1", player, "captured"))
    assert process_pending_events() == {"applied": 2}
    assert Payment.objects.get().status == "credited"
    assert TimelineEvent.objects.filter(action="deposit.credited").count() == 1


def test_one_bad_event_is_marked_with_its_error_and_the_rest_apply(
    card_method, player, monkeypatch
):
    from payments.psp.cardpay import CardPayAdapter

    parse = CardPayAdapter.parse

    def fragile(self, body):
        if b"bad_evt" in body:
            raise ValueError("cannot read this one")
        return parse(self, body)

    monkeypatch.setattr(CardPayAdapter, "parse", fragile)
    psp = card_method.psp
    _receive(psp, _ev("", 1, "p1", player, "captured"))
    _receive(psp, _ev("bad_", 2, "p2", player, "captured"))
    _receive(psp, _ev("", 3, "p3", player, "captured"))
    assert process_pending_events() == {"applied": 2, "error": 1}
    bad = PspInboxEvent.objects.get(event_id="bad_evt_2")
    assert bad.status == "error" and bad.result == "ValueError: cannot read this one"
    assert bad.attempts == 1
    assert Payment.objects.filter(status="credited").count() == 2


def test_a_withdrawal_payout_event_goes_row_by_row(card_method, player, fund):
    from payments.services.payments import do_request_withdrawal

    fund(player, 5000)
    withdrawal = do_request_withdrawal(
        player, method=card_method, amount=1000, instrument="VISA •••• 4242"
    )
    Payment.objects.filter(pk=withdrawal.pk).update(status="sent_to_psp")
    event = _ev(
        "w_", 1, "po_1", player, "paid", amount=1000, payment_kind="withdrawal",
        merchant_reference=withdrawal.reference,
    )  # fmt: skip
    _receive(card_method.psp, event)
    assert process_pending_events() == {"applied": 1}
    assert Payment.objects.get(pk=withdrawal.pk).status == "paid"


# -- the drain task and its debounce --------------------------------------------------------


@pytest.fixture
def broker(monkeypatch):
    """Celery not inline, and the publishes recorded instead of sent: broker.ok = False makes
    them fail as with Redis down."""
    from backoffice.celery import app as celery_app
    from payments import tasks

    class Broker:
        ok = True
        published: list = []

    def publish(task, *args):
        Broker.published.append(task.name)
        return Broker.ok

    monkeypatch.setattr(tasks, "_enqueue", publish)
    monkeypatch.setattr(tasks, "_last_drain_published", 0.0)
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield Broker
    celery_app.conf.task_always_eager = eager


def test_enqueue_publishes_one_drain_per_window(broker, monkeypatch):
    from payments import tasks

    clock = [1000.0]
    monkeypatch.setattr(tasks.time, "time", lambda: clock[0])
    assert enqueue_event(1) and enqueue_event(2) and enqueue_event(3)
    assert broker.published == ["payments.drain_psp_inbox"]
    clock[0] += tasks.DRAIN_WINDOW_SECONDS
    assert enqueue_event(4)
    assert broker.published == ["payments.drain_psp_inbox"] * 2


def test_a_failed_publish_is_tried_again_by_the_next_delivery(broker):
    broker.ok = False
    assert enqueue_event(1) is False and enqueue_event(2) is False
    assert len(broker.published) == 2


def test_drain_applies_pending_rows_and_looks_again_after_the_window(
    card_method, player, monkeypatch
):
    from payments import tasks

    psp = card_method.psp
    _receive(psp, _ev("d_", 1, "p1", player, "captured"))
    PspInboxEvent.objects.update(status="error", attempts=1)  # the sweeper retries these
    _receive(psp, _ev("d_", 2, "p2", player, "captured"))
    passes = []
    real = tasks.process_pending_events

    def counting(**kwargs):
        passes.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(tasks, "process_pending_events", counting)
    monkeypatch.setattr(tasks.time, "sleep", lambda s: None)
    assert tasks.drain_psp_inbox(time.time()) == {"applied": 1}
    assert len(passes) == 2 and all(p["retry_errors"] is False for p in passes)
    assert PspInboxEvent.objects.get(event_id="d_evt_1").status == "error"
    passes.clear()
    tasks.drain_psp_inbox(time.time() - 60)  # published long ago: one look is enough
    assert len(passes) == 1


# -- intake: one statement, and the PSP cache never trusted blindly -------------------------


def test_intake_is_one_statement_once_the_psp_is_cached(card_method, player):
    psp = card_method.psp
    _receive(psp, _ev("c_", 1, "p1", player, "captured"))
    with CaptureQueriesContext(connection) as ctx:
        result = _receive(psp, _ev("c_", 2, "p2", player, "captured"))
    assert result.outcome == "accepted" and len(ctx.captured_queries) == 1


def test_a_delivery_through_the_whole_stack_is_one_query(card_method, player, client):
    """Middleware included: no session, user or second-factor lookup for the webhook URL."""
    psp = card_method.psp

    def post(event):
        d = sign_delivery(psp, event)
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in d.headers.items()}
        extra.pop("HTTP_CONTENT_TYPE", None)
        return client.post(d.path, data=d.body, content_type="application/json", **extra)

    assert post(_ev("m_", 1, "p1", player, "captured")).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert post(_ev("m_", 2, "p2", player, "captured")).json() == {"status": "accepted"}
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["WITH"]
    assert "INSERT INTO" in ctx.captured_queries[0]["sql"]


def test_keys_changed_elsewhere_are_seen_at_once(card_method, player):
    """Another process rotates the keys (no signal reaches this one): the cached copy is checked
    by the insert itself, so a delivery signed with the revoked key is refused on the very next
    call, and one signed with the new key is accepted."""
    psp = card_method.psp
    old_keys = dict(psp.signing_keys)
    assert _receive(psp, _ev("k_", 1, "p1", player, "captured")).outcome == "accepted"
    new_keys = {"current": "whsec-rotated-elsewhere-0123456789"}
    type(psp).objects.filter(pk=psp.pk).update(signing_keys=new_keys)  # no post_save here
    refused = _receive(psp, _ev("k_", 2, "p2", player, "captured"))  # signed with the old key
    assert (refused.status_code, refused.outcome) == (401, "bad_signature")
    assert PspWebhookRejection.objects.filter(reason="bad_signature").count() == 1
    psp.signing_keys = new_keys
    assert _receive(psp, _ev("k_", 3, "p3", player, "captured")).outcome == "accepted"
    psp.signing_keys = old_keys
    assert PspInboxEvent.objects.count() == 2
