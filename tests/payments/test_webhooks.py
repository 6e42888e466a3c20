"""PSP webhooks through the real URL: signatures, storage, duplicates, order, outages."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command

from backoffice.celery import app as celery_app
from payments.ledger_check import find_ledger_problems
from payments.models import (
    Account,
    LedgerEntry,
    Payment,
    PaymentTransition,
    PspInboxEvent,
    PspWebhookRejection,
)
from payments.psp.base import PspEvent
from payments.services import ledger
from payments.simulator import Delivery, sign_delivery

pytestmark = pytest.mark.django_db


def _event(player, status, n=1, psp_reference="pay_1", amount=2500, **extra) -> PspEvent:
    fields = {
        "event_id": f"evt_{n}", "event_type": "", "payment_kind": "deposit", "status": status,
        "psp_reference": psp_reference, "player_ref": player.external_ref, "amount": amount,
        "currency": "EUR", "method": "card", "country": "MT", "instrument": "VISA •••• 4242",
    }  # fmt: skip
    fields.update(extra)
    return PspEvent(**fields)


def _post(client, delivery: Delivery):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in delivery.headers.items()}
    extra.pop("HTTP_CONTENT_TYPE", None)
    return client.post(delivery.path, data=delivery.body, content_type="application/json", **extra)


def _cash(player) -> int:
    acc = ledger.get_wallet(player, "EUR")["cash"]
    return Account.objects.values_list("balance", flat=True).get(pk=acc.pk)


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """deliver(delivery) -> response, with the on-commit Celery hand-off run inline."""

    def do(delivery):
        with django_capture_on_commit_callbacks(execute=True):
            return _post(client, delivery)

    return do


def test_captured_deposit_is_stored_applied_and_credited(card_method, player, deliver):
    response = deliver(sign_delivery(card_method.psp, _event(player, "captured")))
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    row = PspInboxEvent.objects.get()
    assert (row.status, row.event_type, row.psp_reference) == (
        "applied", "payment.captured", "pay_1"
    )  # fmt: skip
    deposit = Payment.objects.get()
    assert deposit.status == "credited" and row.payment_id == deposit.pk
    assert _cash(player) == 2500
    steps = list(deposit.transitions.values_list("to_status", "actor_kind", "psp_event_id"))
    assert steps == [
        ("initiated", "psp", row.pk),
        ("authorised", "psp", row.pk),  # implied by the capture
        ("captured", "psp", row.pk),
        ("credited", "system", row.pk),
    ]


def test_duplicate_delivery_answers_200_and_changes_nothing(card_method, player, deliver):
    delivery = sign_delivery(card_method.psp, _event(player, "captured"))
    deliver(delivery)
    entries = LedgerEntry.objects.count()
    response = deliver(delivery)
    assert response.status_code == 200 and response.json() == {"status": "duplicate"}
    assert PspInboxEvent.objects.count() == 1
    assert LedgerEntry.objects.count() == entries and _cash(player) == 2500


def test_late_authorised_after_captured_changes_nothing(card_method, player, deliver):
    psp = card_method.psp
    deliver(sign_delivery(psp, _event(player, "captured", n=2)))
    deliver(sign_delivery(psp, _event(player, "authorised", n=1)))
    late = PspInboxEvent.objects.get(event_id="evt_1")
    assert late.status == "ignored" and late.result.startswith("No change")
    assert Payment.objects.get().status == "credited" and _cash(player) == 2500


def test_a_decline_after_capture_is_left_for_a_human(card_method, player, deliver):
    psp = card_method.psp
    deliver(sign_delivery(psp, _event(player, "captured", n=1)))
    deliver(sign_delivery(psp, _event(player, "failed", n=2, reason="do_not_honor")))
    row = PspInboxEvent.objects.get(event_id="evt_2")
    assert row.status == "ignored"
    assert row.result == "The deposit is already credited; a failed cannot apply."
    assert Payment.objects.get().status == "credited"


def test_chargeback_before_anything_else_still_ends_right(card_method, player, deliver):
    psp = card_method.psp
    deliver(sign_delivery(psp, _event(player, "charged_back", n=3)))
    deliver(sign_delivery(psp, _event(player, "captured", n=2)))
    deliver(sign_delivery(psp, _event(player, "authorised", n=1)))
    deposit = Payment.objects.get()
    assert deposit.status == "charged_back"
    assert _cash(player) == 0
    assert list(find_ledger_problems()) == []


def test_unknown_player_and_amount_mismatch_are_ignored_with_reasons(card_method, player, deliver):
    psp = card_method.psp
    deliver(sign_delivery(psp, _event(player, "captured", n=1, player_ref="NOPE")))
    assert "No player 'NOPE'" in PspInboxEvent.objects.get(event_id="evt_1").result
    deliver(sign_delivery(psp, _event(player, "authorised", n=2, psp_reference="p2")))
    deliver(sign_delivery(psp, _event(player, "captured", n=3, psp_reference="p2", amount=9)))
    row = PspInboxEvent.objects.get(event_id="evt_3")
    assert row.status == "ignored" and row.result.startswith("Amount mismatch")
    assert Payment.objects.get().status == "authorised" and _cash(player) == 0


def test_blocked_player_deposit_from_the_psp_is_recorded_as_refused(card_method, player, deliver):
    player.block_deposits = True
    player.save()
    deliver(sign_delivery(card_method.psp, _event(player, "captured")))
    deposit = Payment.objects.get()
    assert (deposit.status, deposit.status_reason) == ("failed", "deposits_blocked")
    assert _cash(player) == 0


def _rejected(client, delivery, status, reason):
    before = (LedgerEntry.objects.count(), PspInboxEvent.objects.count())
    response = _post(client, delivery)
    assert response.status_code == status
    assert PspWebhookRejection.objects.filter(reason=reason).count() == 1
    assert (LedgerEntry.objects.count(), PspInboxEvent.objects.count()) == before


def test_bad_signature_is_rejected_recorded_and_moves_nothing(card_method, player, client):
    good = sign_delivery(card_method.psp, _event(player, "captured"))
    forged = Delivery(good.method, good.path, good.headers, good.body.replace("2500", "250000"))
    _rejected(client, forged, 401, "bad_signature")
    assert not Payment.objects.exists()


def test_stale_signature_is_rejected(card_method, player, client):
    old = sign_delivery(card_method.psp, _event(player, "captured"), now=time.time() - 301)
    _rejected(client, old, 401, "stale")


def test_missing_signature_malformed_body_and_unknown_psp(card_method, player, client):
    good = sign_delivery(card_method.psp, _event(player, "captured"))
    _rejected(client, Delivery("POST", good.path, {}, good.body), 401, "missing_signature")
    bad_json = sign_delivery(card_method.psp, _event(player, "captured"))
    from payments.psp.registry import get_adapter

    body = b'{"no": "id"}'
    headers = get_adapter("cardpay").sign(
        card_method.psp, method="POST", path=good.path, body=body, now=time.time()
    )
    _rejected(client, Delivery("POST", bad_json.path, headers, body.decode()), 400, "malformed")
    response = client.post("/webhooks/psp/nobody/", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert PspWebhookRejection.objects.filter(reason="unknown_psp", psp_code="nobody").exists()
    assert client.get(good.path).status_code == 405


def test_garbage_with_nul_bytes_is_refused_not_crashed(card_method, client):
    response = client.post(
        f"/webhooks/psp/{card_method.psp.code}/",
        data=b"\x00\xff{garbage",
        content_type="application/json",
        HTTP_CARDPAY_SIGNATURE="t=1,v1=00",
    )
    assert response.status_code == 401
    assert "\ufffd" in PspWebhookRejection.objects.get().body_excerpt


def test_cardpay_accepts_the_previous_key_during_rotation(card_method, player, deliver):
    psp = card_method.psp
    old_secret = psp.signing_keys["current"]
    psp.signing_keys = {"previous": old_secret}
    signed_with_old = sign_delivery(psp, _event(player, "captured"))
    psp.signing_keys = {"current": "whsec-new-secret-abcdef", "previous": old_secret}
    psp.save()
    assert deliver(signed_with_old).status_code == 200


def test_openbank_signs_the_path_and_speaks_decimal(bank_method, player, deliver, client):
    psp = bank_method.psp
    event = _event(player, "captured", method="open_banking", amount=1050, instrument="")
    good = sign_delivery(psp, event)
    assert json.loads(good.body)["payment"]["amount"] == {"value": "10.50", "currency": "EUR"}
    moved = Delivery(good.method, "/webhooks/psp/cardpay-alpha/", good.headers, good.body)
    assert _post(client, moved).status_code in (401, 404)  # signed for another URL
    assert deliver(good).status_code == 200
    assert _cash(player) == 1050
    refund = _event(player, "refunded", n=2, method="open_banking", amount=1050, instrument="")
    deliver(sign_delivery(psp, refund))
    assert Payment.objects.get().status == "refunded" and _cash(player) == 0


def test_openbank_rejects_an_unknown_key_id(bank_method, player, client):
    psp = bank_method.psp
    good = sign_delivery(psp, _event(player, "captured", method="open_banking"))
    headers = dict(good.headers, **{"X-OB-Key-Id": "k9"})
    _rejected(client, Delivery(good.method, good.path, headers, good.body), 401, "bad_signature")


def test_intake_is_two_statements_when_the_worker_does_the_rest(
    card_method, player, client, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr("payments.tasks.enqueue_event", lambda inbox_id: True)
    delivery = sign_delivery(card_method.psp, _event(player, "captured"))
    # PSP lookup, inbox insert (+ the savepoint pair inside the test's transaction)
    with django_assert_max_num_queries(4):
        assert _post(client, delivery).status_code == 200
    assert PspInboxEvent.objects.get().status == "pending"


def test_redis_down_accepts_then_processes_after(
    card_method, player, client, caplog, django_capture_on_commit_callbacks, monkeypatch
):
    """The broker is a closed port: the webhook still answers 200 at once and stores the event;
    `process_psp_inbox` (what the sweeper runs) applies it once Redis is back."""
    original = celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    celery_app._pool = None  # drop pooled connections to the real broker
    monkeypatch.setattr("payments.tasks._last_drain_published", 0.0)
    try:
        delivery = sign_delivery(card_method.psp, _event(player, "captured"))
        started = time.monotonic()
        with (
            caplog.at_level("WARNING", logger="payments.tasks"),
            django_capture_on_commit_callbacks(execute=True) as callbacks,
        ):
            response = _post(client, delivery)
        assert time.monotonic() - started < 2.0
        assert response.status_code == 200 and len(callbacks) == 1
        assert "Could not enqueue payments.drain_psp_inbox" in caplog.text
        assert PspInboxEvent.objects.get().status == "pending"
        assert _cash(player) == 0
    finally:
        celery_app.conf.broker_url = original
        celery_app._pool = None
        celery_app.conf.task_always_eager = True
    call_command("process_psp_inbox")
    assert PspInboxEvent.objects.get().status == "applied"
    assert _cash(player) == 2500


def test_sweeper_applies_only_rows_left_behind(card_method, player, client, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from payments.tasks import sweep_psp_inbox

    monkeypatch.setattr("payments.tasks.enqueue_event", lambda inbox_id: False)
    _post(client, sign_delivery(card_method.psp, _event(player, "captured", n=1)))
    _post(
        client, sign_delivery(card_method.psp, _event(player, "captured", n=2, psp_reference="p2"))
    )
    PspInboxEvent.objects.filter(event_id="evt_1").update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    assert sweep_psp_inbox() == {"applied": 1}
    assert dict(PspInboxEvent.objects.values_list("event_id", "status")) == {
        "evt_1": "applied",
        "evt_2": "pending",
    }
    assert PaymentTransition.objects.filter(to_status="credited").count() == 1
