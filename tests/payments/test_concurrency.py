"""Concurrency on real PostgreSQL with real threads and real transactions."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from backoffice.exceptions import ApprovalNotPending
from backoffice.services import do_decide_approval
from payments.exceptions import InsufficientFunds, InvalidTransition
from payments.ledger_check import find_ledger_problems
from payments.models import (
    Account,
    ApprovalThreshold,
    LedgerTransaction,
    Payment,
    PaymentStatus,
    PaymentTransition,
)
from payments.services import corrections, ledger
from payments.services.payments import do_approve_withdrawal, do_request_withdrawal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _run_at_once(n: int, func) -> list:
    """Run func(i) in n threads released together; return each result or exception."""
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait(timeout=30)
            return func(i)
        except Exception as exc:  # noqa: BLE001 - the caller inspects what each thread got
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def test_fifty_withdrawals_against_a_wallet_funded_for_ten(player, card_method, fund):
    fund(player, 10 * 1000)
    connection.close()  # the threads open their own connections

    def withdraw(i):
        w = do_request_withdrawal(
            player, method=card_method, amount=1000, instrument=f"VISA {i:04d}"
        )
        return w.pk

    results = _run_at_once(50, withdraw)
    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"int": 10, "InsufficientFunds": 40}, kinds
    assert all(isinstance(r, (int, InsufficientFunds)) for r in results)
    wallet = ledger.get_wallet(player, "EUR")
    balances = dict(
        Account.objects.filter(pk__in=[a.pk for a in wallet.values()]).values_list(
            "kind", "balance"
        )
    )
    assert balances == {"cash": 0, "bonus": 0, "locked": 10_000}
    assert Payment.objects.filter(kind="withdrawal").count() == 10
    # the cash balance never went below zero at any point of the chain
    assert not Account.objects.get(pk=wallet["cash"].pk).entries.filter(balance_after__lt=0)
    assert list(find_ledger_problems()) == []


def test_two_approvers_at_once_pay_once(player, card_method, fund, make_staff):
    fund(player, 5000)
    approvers = [make_staff("Payments"), make_staff("Payments")]
    w = do_request_withdrawal(player, method=card_method, amount=2000, instrument="VISA 1")
    connection.close()

    def approve(i):
        with transaction.atomic():
            do_approve_withdrawal(w.pk, acting_user=approvers[i])
        return "approved"

    results = _run_at_once(2, approve)
    assert sorted(type(r).__name__ for r in results) == ["InvalidTransition", "str"]
    assert any(isinstance(r, InvalidTransition) for r in results)
    to_statuses = list(
        PaymentTransition.objects.filter(payment_id=w.pk).values_list("to_status", flat=True)
    )
    assert to_statuses.count("approved") == 1
    assert to_statuses.count("sent_to_psp") == 1  # one payout submitted
    w.refresh_from_db()
    assert w.status == PaymentStatus.SENT_TO_PSP


def test_two_approvers_of_one_adjustment_post_once(player, make_staff, fund):
    ApprovalThreshold.objects.create(currency_id="EUR", amount=100)
    requester = make_staff("Payments")
    approvers = [make_staff("Payments"), make_staff("Payments")]
    request = corrections.do_request_adjustment(
        player,
        currency="EUR",
        balance="cash",
        direction="credit",
        amount=50_000,
        reason_code="goodwill",
        note="compensation for outage",
        acting_user=requester,
    )
    connection.close()

    def decide(i):
        do_decide_approval(request.pk, acting_user=approvers[i], approve=True)
        return "approved"

    results = _run_at_once(2, decide)
    assert sorted(type(r).__name__ for r in results) == ["ApprovalNotPending", "str"]
    assert any(isinstance(r, ApprovalNotPending) for r in results)
    assert LedgerTransaction.objects.filter(kind="adjustment").count() == 1
    assert ledger.get_wallet(player, "EUR")["cash"].balance == 50_000
