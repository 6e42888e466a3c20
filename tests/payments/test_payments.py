"""Deposits and withdrawals through their services: restrictions, state machines, postings."""

from __future__ import annotations

import pytest
import requests
from django.db import transaction

from payments.exceptions import (
    AmountOutOfRange,
    DepositsBlocked,
    InsufficientFunds,
    InvalidTransition,
    MethodUnavailable,
    WithdrawalsBlocked,
)
from payments.ledger_check import find_ledger_problems
from payments.models import Account, Payment, PaymentStatus, PaymentTransition
from payments.services import ledger
from payments.services.payments import (
    do_approve_withdrawal,
    do_cancel_withdrawal,
    do_hold_withdrawal,
    do_initiate_deposit,
    do_reject_withdrawal,
    do_request_withdrawal,
)
from players.models import Player, TimelineEvent

pytestmark = pytest.mark.django_db

S = PaymentStatus


def _wallet(player) -> dict[str, int]:
    wallet = ledger.get_wallet(player, "EUR")
    return {
        kind: Account.objects.values_list("balance", flat=True).get(pk=acc.pk)
        for kind, acc in wallet.items()
    }


def _statuses(payment) -> list[tuple[str, str, str]]:
    return list(
        PaymentTransition.objects.filter(payment=payment)
        .order_by("id")
        .values_list("from_status", "to_status", "actor_kind")
    )


# -- restrictions ---------------------------------------------------------------------------


def test_blocked_deposits_are_refused_with_a_specific_error(player, card_method):
    player.block_deposits = True
    player.save()
    with pytest.raises(DepositsBlocked, match="deposit is blocked"):
        do_initiate_deposit(player, method=card_method, amount=1000)
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "status", [Player.Status.SUSPENDED, Player.Status.BLOCKED, Player.Status.SELF_EXCLUDED]
)
def test_an_inactive_account_cannot_deposit(player, card_method, status):
    player.status = status
    player.save()
    with pytest.raises(DepositsBlocked, match="the account is"):
        do_initiate_deposit(player, method=card_method, amount=1000)


def test_blocked_withdrawals_are_refused_and_nothing_moves(player, card_method, fund):
    fund(player, 5000)
    player.block_withdrawals = True
    player.save()
    with pytest.raises(WithdrawalsBlocked, match="withdraw is blocked"):
        do_request_withdrawal(player, method=card_method, amount=1000, instrument="VISA 4242")
    assert _wallet(player)["cash"] == 5000
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "status, allowed",
    [
        (Player.Status.SELF_EXCLUDED, True),
        (Player.Status.SUSPENDED, False),
        (Player.Status.BLOCKED, False),
        (Player.Status.CLOSED, True),  # an operator pays out the accounts it closes
    ],
)
def test_self_excluded_players_may_still_withdraw(player, card_method, fund, status, allowed):
    fund(player, 5000)
    player.status = status
    player.save()
    if allowed:
        w = do_request_withdrawal(player, method=card_method, amount=1000, instrument="VISA 1")
        assert w.status in (S.REQUESTED, S.IN_REVIEW)
    else:
        with pytest.raises(WithdrawalsBlocked):
            do_request_withdrawal(player, method=card_method, amount=1000, instrument="VISA 1")


def test_switched_off_psp_or_method_takes_no_new_payments(player, card_method):
    card_method.is_enabled = False
    card_method.status_reason = "issuer outage"
    card_method.save()
    with pytest.raises(MethodUnavailable, match="issuer outage"):
        do_initiate_deposit(player, method=card_method, amount=1000)
    card_method.is_enabled = True
    card_method.save()
    card_method.psp.is_enabled = False
    card_method.psp.status_reason = "maintenance"
    card_method.psp.save()
    with pytest.raises(MethodUnavailable, match="maintenance"):
        do_initiate_deposit(player, method=card_method, amount=1000)


def test_method_country_and_limits_are_enforced(player, card_method):
    card_method.country = "SE"
    card_method.save()
    with pytest.raises(MethodUnavailable, match="not offered in MT"):
        do_initiate_deposit(player, method=card_method, amount=1000)
    card_method.country = ""
    card_method.min_amount, card_method.max_amount = 1000, 50000
    card_method.save()
    with pytest.raises(AmountOutOfRange, match="minimum is 10.00 EUR"):
        do_initiate_deposit(player, method=card_method, amount=999)
    with pytest.raises(AmountOutOfRange, match="maximum is 500.00 EUR"):
        do_initiate_deposit(player, method=card_method, amount=50001)
    with pytest.raises(AmountOutOfRange):
        do_initiate_deposit(player, method=card_method, amount=0)


# -- withdrawals ----------------------------------------------------------------------------


def test_request_locks_the_money_and_a_new_instrument_goes_to_review(player, card_method, fund):
    fund(player, 5000)
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 4242")
    assert _wallet(player) == {"cash": 3000, "bonus": 0, "locked": 2000}
    assert w.status == S.IN_REVIEW and w.status_reason == "new_payment_method"
    assert _statuses(w) == [("", "requested", "player"), ("requested", "in_review", "system")]
    actions = set(TimelineEvent.objects.filter(player=player).values_list("action", flat=True))
    assert {"withdrawal.requested", "withdrawal.in_review", "ledger.withdrawal_lock"} <= actions


def test_an_instrument_already_deposited_with_waits_as_requested(player, card_method, fund):
    fund(player, 5000)
    d = do_initiate_deposit(player, method=card_method, amount=1000, instrument="VISA 4242")
    Payment.objects.filter(pk=d.pk).update(status=S.CREDITED)  # as if credited earlier
    w = do_request_withdrawal(player, method=card_method, amount=500, instrument="visa 4242 ")
    assert w.status == S.REQUESTED


def test_request_beyond_cash_is_refused_whole(player, card_method, fund):
    fund(player, 999)
    with pytest.raises(InsufficientFunds):
        do_request_withdrawal(player, method=card_method, amount=1000, instrument="VISA 1")
    assert not Payment.objects.exists()
    assert _wallet(player)["cash"] == 999


def test_approve_sends_to_the_psp_and_paid_moves_locked_to_clearing(
    player, card_method, fund, make_staff, house, django_capture_on_commit_callbacks
):
    from payments.psp.base import PspEvent
    from payments.services.psp_events import apply_event

    fund(player, 5000)
    staff = make_staff("Payments")
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 1")
    with django_capture_on_commit_callbacks(execute=True):  # → send_payout, inline
        do_approve_withdrawal(w.pk, acting_user=staff, note="looks fine")
    w.refresh_from_db()
    assert w.status == S.SENT_TO_PSP
    assert w.psp_reference == f"po_{w.reference}"
    event = PspEvent(
        event_id="evt1", event_type="payout.paid", payment_kind="withdrawal", status="paid",
        psp_reference=w.psp_reference, amount=2000, currency="EUR",
    )  # fmt: skip
    apply_event(card_method.psp, event, None)
    w.refresh_from_db()
    assert w.status == S.PAID
    assert _wallet(player) == {"cash": 3000, "bonus": 0, "locked": 0}
    clearing = Account.objects.get(pk=house().pk)
    assert clearing.balance == -5000 + 2000
    assert [t[1] for t in _statuses(w)] == [
        "requested", "in_review", "approved", "sent_to_psp", "paid",
    ]  # fmt: skip
    assert list(find_ledger_problems()) == []


@pytest.mark.parametrize("how", ["reject", "cancel", "decline"])
def test_money_returns_to_cash_when_a_withdrawal_does_not_happen(
    player, card_method, fund, make_staff, monkeypatch, how, django_capture_on_commit_callbacks
):
    fund(player, 5000)
    staff = make_staff("Payments")
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 1")
    if how == "reject":
        do_reject_withdrawal(w.pk, acting_user=staff, reason_code="suspected_fraud", note="x")
    elif how == "cancel":
        do_cancel_withdrawal(w.pk)
    else:
        card_method.psp.api_base_url = "https://psp.invalid"
        card_method.psp.save()

        class Declined:
            status_code = 422

            def json(self):
                return {"status": "declined", "decline_code": "account_closed", "message": "no"}

        monkeypatch.setattr(requests, "post", lambda *a, **k: Declined())
        with django_capture_on_commit_callbacks(execute=True):
            do_approve_withdrawal(w.pk, acting_user=staff)
    w.refresh_from_db()
    assert w.status == {"reject": S.REJECTED, "cancel": S.CANCELLED, "decline": S.FAILED}[how]
    assert _wallet(player) == {"cash": 5000, "bonus": 0, "locked": 0}
    assert list(find_ledger_problems()) == []


def test_payout_with_unknown_outcome_stays_held(
    player, card_method, fund, make_staff, monkeypatch, django_capture_on_commit_callbacks
):
    fund(player, 5000)
    staff = make_staff("Payments")
    card_method.psp.api_base_url = "https://psp.invalid"
    card_method.psp.save()

    def timeout(*args, **kwargs):
        raise requests.Timeout("read timed out")

    monkeypatch.setattr(requests, "post", timeout)
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 1")
    with django_capture_on_commit_callbacks(execute=True):
        do_approve_withdrawal(w.pk, acting_user=staff)
    w.refresh_from_db()
    assert w.status == S.SENT_TO_PSP
    assert w.psp_note.startswith("Outcome unknown")
    assert _wallet(player) == {"cash": 3000, "bonus": 0, "locked": 2000}


def test_a_decided_withdrawal_cannot_be_decided_again(player, card_method, fund, make_staff):
    fund(player, 5000)
    staff = make_staff("Payments")
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 1")
    do_reject_withdrawal(w.pk, acting_user=staff, reason_code="other", note="no")
    with pytest.raises(InvalidTransition, match="rejected and cannot become approved"):
        do_approve_withdrawal(w.pk, acting_user=staff)
    with pytest.raises(InvalidTransition):
        do_hold_withdrawal(w.pk, acting_user=staff, reason_code="aml_check")
    assert _wallet(player)["cash"] == 5000


def test_staff_outside_the_brand_or_role_cannot_act(player, card_method, fund, make_staff, brand_b):
    from django.core.exceptions import PermissionDenied

    fund(player, 5000)
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 1")
    other_brand = make_staff("Payments", brands=[brand_b])
    support = make_staff("Support")
    for user in (other_brand, support):
        with pytest.raises(PermissionDenied), transaction.atomic():
            do_approve_withdrawal(w.pk, acting_user=user)
    w.refresh_from_db()
    assert w.status == S.IN_REVIEW


def test_risk_may_hold_but_not_approve(player, card_method, fund, make_staff):
    from django.core.exceptions import PermissionDenied

    fund(player, 5000)
    d = do_initiate_deposit(player, method=card_method, amount=100, instrument="VISA 9")
    Payment.objects.filter(pk=d.pk).update(status=S.CREDITED)
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 9")
    assert w.status == S.REQUESTED
    risk = make_staff("Risk")
    do_hold_withdrawal(w.pk, acting_user=risk, reason_code="suspected_fraud", note="velocity")
    w.refresh_from_db()
    assert (w.status, w.status_reason) == (S.IN_REVIEW, "suspected_fraud")
    with pytest.raises(PermissionDenied):
        do_approve_withdrawal(w.pk, acting_user=risk)


def test_a_deposit_created_by_a_psp_callback_has_its_history(player, credited_deposit):
    """Deposits are saved through the `Deposit` proxy; its saves must reach Payment's history."""
    payment = credited_deposit(player, 25_00)
    versions = list(payment.history.order_by("history_id").values_list("history_type", "status"))
    assert versions[0][0] == "+"
    assert versions[-1] == ("~", "credited")
