"""Manual adjustments, refunds, reversals and chargebacks, with four eyes above a threshold."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction

from backoffice.exceptions import SelfApprovalRefused
from backoffice.models import ApprovalRequest, AuditEvent
from backoffice.services import do_decide_approval
from payments.exceptions import InsufficientFunds, InvalidTransition, PaymentsError
from payments.ledger_check import find_ledger_problems
from payments.models import Account, ApprovalThreshold, LedgerTransaction, Payment
from payments.services import corrections, ledger
from payments.services.config import do_set_approval_threshold

pytestmark = pytest.mark.django_db


@pytest.fixture
def threshold():
    return ApprovalThreshold.objects.create(currency_id="EUR", amount=10_000)


@pytest.fixture
def payments_staff(make_staff):
    return make_staff("Payments"), make_staff("Payments")


def _balance(player, kind="cash"):
    acc = ledger.get_wallet(player, "EUR")[kind]
    return Account.objects.values_list("balance", flat=True).get(pk=acc.pk)


def _adjust(player, user, amount, direction="credit", balance="cash", key=None):
    return corrections.do_request_adjustment(
        player, currency="EUR", balance=balance, direction=direction, amount=amount,
        reason_code="goodwill", note="Sorry about the outage", acting_user=user,
        idempotency_key=key,
    )  # fmt: skip


def test_small_adjustment_posts_at_once_with_reason_and_audit(player, threshold, payments_staff):
    requester, _ = payments_staff
    txn = _adjust(player, requester, 10_000)
    assert isinstance(txn, LedgerTransaction)
    assert (txn.kind, txn.reason_code, txn.created_by_id) == (
        "adjustment",
        "goodwill",
        requester.pk,
    )
    assert _balance(player) == 10_000
    house = Account.objects.get(kind=Account.Kind.ADJUSTMENTS, brand=player.brand)
    assert house.balance == -10_000
    assert AuditEvent.objects.filter(action="payments.adjustment.posted").count() == 1


def test_double_submit_of_the_same_form_posts_once(player, threshold, payments_staff):
    requester, _ = payments_staff
    first = _adjust(player, requester, 500, key="form-123")
    again = _adjust(player, requester, 500, key="form-123")
    assert first.pk == again.pk
    assert _balance(player) == 500


def test_large_adjustment_waits_for_a_second_approver(player, threshold, payments_staff):
    requester, approver = payments_staff
    request = _adjust(player, requester, 10_001)
    assert isinstance(request, ApprovalRequest)
    assert request.status == "pending" and "Credit 100.01 EUR cash" in request.summary
    assert _balance(player) == 0
    with pytest.raises(SelfApprovalRefused):
        do_decide_approval(request.pk, acting_user=requester, approve=True)
    decided = do_decide_approval(request.pk, acting_user=approver, approve=True)
    txn = LedgerTransaction.objects.get(pk=decided.result["transaction_id"])
    assert txn.approval_id == request.pk and txn.created_by_id == approver.pk
    assert _balance(player) == 10_001


def test_a_currency_without_threshold_always_needs_approval(player, payments_staff):
    requester, _ = payments_staff
    assert isinstance(_adjust(player, requester, 1), ApprovalRequest)


def test_debit_beyond_the_balance_is_refused_now_and_at_approval(
    player, threshold, payments_staff, fund
):
    requester, approver = payments_staff
    fund(player, 50_000)
    with pytest.raises(InsufficientFunds):
        _adjust(player, requester, 60_000, direction="debit")
    request = _adjust(player, requester, 40_000, direction="debit")
    # the player spends the money before the approver gets to it
    wallet = ledger.get_wallet(player, "EUR")
    provider = ledger.get_house_account(player.brand_id, Account.Kind.GAME_PROVIDER, "EUR", "g")
    ledger.do_post_transfer(
        idempotency_key="bet-1", kind="bet", legs=[(wallet["cash"], -20_000), (provider, 20_000)],
        brand=player.brand_id, player=player,
    )  # fmt: skip
    with pytest.raises(InsufficientFunds), transaction.atomic():
        do_decide_approval(request.pk, acting_user=approver, approve=True)
    request.refresh_from_db()
    assert request.status == "pending"  # nothing half-done: still waiting
    assert _balance(player) == 30_000


def test_bonus_adjustment_uses_the_bonus_cost_account(player, threshold, payments_staff):
    requester, _ = payments_staff
    _adjust(player, requester, 2_000, balance="bonus")
    assert _balance(player, "bonus") == 2_000
    assert Account.objects.get(kind=Account.Kind.BONUS_COST, brand=player.brand).balance == -2_000


def test_support_cannot_adjust_and_bad_input_is_refused(player, threshold, make_staff):
    with pytest.raises(PermissionDenied):
        _adjust(player, make_staff("Support"), 100)
    staff = make_staff("Payments")
    with pytest.raises(PaymentsError, match="reason code"):
        corrections.do_request_adjustment(
            player, currency="EUR", balance="cash", direction="credit", amount=100,
            reason_code="because", note="x", acting_user=staff,
        )  # fmt: skip
    with pytest.raises(PaymentsError, match="note"):
        corrections.do_request_adjustment(
            player, currency="EUR", balance="cash", direction="credit", amount=100,
            reason_code="goodwill", note="  ", acting_user=staff,
        )  # fmt: skip
    assert not LedgerTransaction.objects.exists()


def _correct(deposit, user, operation):
    return corrections.do_request_deposit_correction(
        deposit.pk, operation=operation, reason_code="player_request", note="asked by phone",
        acting_user=user,
    )  # fmt: skip


def test_refund_below_threshold_returns_the_money_to_the_psp(
    player, threshold, payments_staff, credited_deposit
):
    deposit = credited_deposit(player, 5_000)
    result = _correct(deposit, payments_staff[0], "refund")
    assert result.status == "refunded"
    assert _balance(player) == 0
    assert LedgerTransaction.objects.filter(kind="refund", object_id=str(deposit.pk)).exists()
    with pytest.raises(InvalidTransition, match="only a credited deposit"):
        _correct(deposit, payments_staff[0], "reversal")


def test_staff_refund_of_spent_money_is_refused(
    player, threshold, payments_staff, credited_deposit
):
    deposit = credited_deposit(player, 5_000)
    ledger.do_post_transfer(
        idempotency_key="spent", kind="bet",
        legs=[(ledger.get_wallet(player, "EUR")["cash"], -4_000),
              (ledger.get_house_account(player.brand_id, "game_provider", "EUR", "g"), 4_000)],
        brand=player.brand_id, player=player,
    )  # fmt: skip
    with pytest.raises(InsufficientFunds), transaction.atomic():
        _correct(deposit, payments_staff[0], "refund")
    assert Payment.objects.get(pk=deposit.pk).status == "credited"


def test_recorded_chargeback_books_what_the_player_lacks_as_a_loss(
    player, threshold, payments_staff, credited_deposit
):
    deposit = credited_deposit(player, 5_000)
    ledger.do_post_transfer(
        idempotency_key="spent", kind="bet",
        legs=[(ledger.get_wallet(player, "EUR")["cash"], -4_000),
              (ledger.get_house_account(player.brand_id, "game_provider", "EUR", "g"), 4_000)],
        brand=player.brand_id, player=player,
    )  # fmt: skip
    _correct(deposit, payments_staff[0], "chargeback")
    assert _balance(player) == 0
    losses = Account.objects.get(kind=Account.Kind.CHARGEBACK_LOSSES, brand=player.brand)
    assert losses.balance == -4_000
    assert list(find_ledger_problems()) == []


def test_large_reversal_goes_through_approval_and_points_at_the_credit(
    player, threshold, payments_staff, credited_deposit
):
    requester, approver = payments_staff
    deposit = credited_deposit(player, 50_000)
    request = _correct(deposit, requester, "reversal")
    assert isinstance(request, ApprovalRequest)
    with pytest.raises(PaymentsError, match="already awaiting approval"):
        _correct(deposit, requester, "refund")
    do_decide_approval(request.pk, acting_user=approver, approve=True)
    deposit.refresh_from_db()
    assert deposit.status == "reversed"
    credit = LedgerTransaction.objects.get(idempotency_key=f"payment:{deposit.pk}:credited")
    reversal = LedgerTransaction.objects.get(kind="reversal")
    assert reversal.reverses_id == credit.pk and reversal.approval_id == request.pk
    assert _balance(player) == 0


def test_adjustment_made_in_error_is_reversed_once(player, threshold, payments_staff):
    requester, _ = payments_staff
    txn = _adjust(player, requester, 700)
    reversal = corrections.do_request_ledger_reversal(
        txn.pk, reason_code="duplicate", note="entered twice", acting_user=requester
    )
    assert reversal.reverses_id == txn.pk and _balance(player) == 0
    with pytest.raises(PaymentsError, match="already been reversed"):
        corrections.do_request_ledger_reversal(
            txn.pk, reason_code="duplicate", note="again", acting_user=requester
        )


def test_threshold_changes_are_audited(payments_staff, make_staff):
    staff = payments_staff[0]
    do_set_approval_threshold("EUR", amount=25_000, reason="policy v2", acting_user=staff)
    do_set_approval_threshold("EUR", amount=30_000, reason="policy v3", acting_user=staff)
    assert ApprovalThreshold.objects.get(pk="EUR").amount == 30_000
    event = AuditEvent.objects.filter(action="payments.threshold.changed").first()
    assert event.before == {"amount": 25_000} and event.after == {"amount": 30_000}
    with pytest.raises(PermissionDenied):
        do_set_approval_threshold("EUR", amount=1, reason="x", acting_user=make_staff("Support"))
