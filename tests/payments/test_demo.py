"""The payments part of the demo casino: balanced, idempotent, with its stories planted."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from backoffice.models import ApprovalRequest
from payments.ledger_check import find_ledger_problems
from payments.models import (
    Account,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    Psp,
    PspInboxEvent,
    RiskPolicy,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SEED_ARGS = ["--players", "60", "--seed", "11", "--now", "2026-03-01T00:00:00Z", "--force"]


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", *SEED_ARGS, stdout=out)
    return out.getvalue()


def _counts() -> tuple:
    return tuple(
        m.objects.count()
        for m in (Psp, Payment, PspInboxEvent, LedgerTransaction, LedgerEntry, Account)
    )


def test_demo_money_adds_up_and_tells_its_stories():
    output = _seed()
    assert "5 PSPs, 7 methods" in output
    assert list(find_ledger_problems()) == []
    # every brand has a withdrawal risk policy for each currency it pays out in
    policies = {(p.brand.code, p.currency_id) for p in RiskPolicy.objects.select_related("brand")}
    assert ("aurora", "EUR") in policies
    assert all(p.auto_pay_max_amount > 0 for p in RiskPolicy.objects.all())
    assert Payment.objects.filter(kind="deposit", status="credited").count() > 20
    assert Payment.objects.filter(kind="withdrawal").exists()

    # a deposit charged back a week later, most of it already withdrawn: a loss
    charged = Payment.objects.get(player__external_ref="demo-story-ring-1", status="charged_back")
    credited_at = charged.transitions.get(to_status="credited").at
    assert (charged.status_changed_at - credited_at).days >= 7
    chargeback = LedgerTransaction.objects.get(kind="chargeback", object_id=str(charged.pk))
    losses = chargeback.entries.get(account__kind="chargeback_losses")
    assert losses.amount == -150_00

    # a payout the PSP never confirmed: held, and the page says so
    held = Payment.objects.get(player__external_ref="demo-story-vip", status="sent_to_psp")
    assert held.psp_note.startswith("Outcome unknown")
    cash_locked = dict(
        Account.objects.filter(player=held.player, currency_id="EUR").values_list("kind", "balance")
    )
    assert cash_locked["locked"] == held.amount

    # a withdrawal held for review because the payment method is new
    review = Payment.objects.get(
        player__external_ref="demo-story-where-is-my-money", kind="withdrawal"
    )
    assert (review.status, review.status_reason) == ("in_review", "new_payment_method")

    # a manual adjustment waiting for a second approver
    pending = ApprovalRequest.objects.get(action="payments.adjustment", status="pending")
    assert pending.requested_by.username == "payments" and "250.00 EUR" in pending.summary

    # callbacks are stored like real ones: they parse with their PSP's adapter
    from payments.psp.registry import get_adapter

    event = (
        PspInboxEvent.objects.select_related("psp").filter(payment=charged).order_by("id").last()
    )
    parsed = get_adapter(event.psp.adapter).parse(event.body.encode())
    assert parsed.status == "charged_back" and parsed.amount == charged.amount


def test_second_run_changes_nothing():
    _seed()
    before = _counts()
    assert "demo PSPs already there" in _seed()
    assert _counts() == before
