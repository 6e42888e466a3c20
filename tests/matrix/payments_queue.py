"""Permission-matrix cases for the withdrawal queue, risk policies and reconciliation pages.

Who may do what (from `payments/roles.py`): everyone who sees withdrawals (Support, Payments,
Risk, Compliance, Auditor) sees the queue and a withdrawal's review page; Payments and Risk
claim, release and hold; only Payments approves, rejects and bulk-approves. Risk policies are
read by Payments, Risk and Auditor and changed by Payments leads (`manage_riskpolicy`, with the
Payments role). Settlement reports and exceptions are Payments' (Auditor reads them).
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from tests.matrix import Case

VIEWERS = frozenset({"Support", "Payments", "Risk", "Compliance", "Auditor"})
REVIEWERS = frozenset({"Payments", "Risk"})
PAYMENTS = frozenset({"Payments"})
POLICY_READERS = frozenset({"Payments", "Risk", "Auditor"})
RECON_READERS = frozenset({"Payments", "Auditor"})

CSV = b"id,merchant_reference,type,amount,currency,status,created\n"


def build(world: SimpleNamespace) -> None:
    from django.utils import timezone

    from payments.models import (
        Currency,
        PaymentMethod,
        ReconciliationException,
        RiskPolicy,
        SettlementReport,
    )
    from payments.services import ledger
    from payments.services.payments import do_request_withdrawal
    from tests.factories import PaymentMethodFactory, PlayerFactory, PspFactory

    Currency.objects.get_or_create(code="EUR", defaults={"name": "Euro", "exponent": 2})
    psp = PspFactory(brand=world.brand_a, code="mxq-cardpay", name="Matrix Queue CardPay")
    method = PaymentMethodFactory(psp=psp, kind=PaymentMethod.Kind.CARD, currency_id="EUR")
    player = PlayerFactory(brand=world.brand_a, username="mxq-payer", currency="EUR",
                           country="MT")  # fmt: skip
    wallet = ledger.get_wallet(player, "EUR")
    clearing = ledger.get_house_account(world.brand_a.pk, "psp_clearing", "EUR", ref=psp.code)
    ledger.do_post_transfer(
        idempotency_key="matrix-queue-fund", kind="deposit",
        legs=[(clearing, -50_000), (wallet["cash"], 50_000)], brand=world.brand_a.pk,
        player=player,
    )  # fmt: skip
    withdrawal = do_request_withdrawal(player, method=method, amount=2_000, instrument="VISA 7")
    policy = RiskPolicy.objects.create(brand=world.brand_a, currency_id="EUR")
    report = SettlementReport.objects.create(
        psp=psp, brand=world.brand_a, file="settlement/matrix.csv", original_name="matrix.csv",
        sha256="0" * 64, size=len(CSV), status=SettlementReport.Status.DONE, line_count=1,
        counts={"matched": 0, "amount_mismatch": 1}, finished_at=timezone.now(),
    )  # fmt: skip
    exception = ReconciliationException.objects.create(
        psp=psp, brand=world.brand_a, kind="amount_mismatch", match_key="mxq-ref-1",
        report=report, last_report=report, payment=withdrawal, psp_reference="mxq-ref-1",
        line_no=2, line_count=1, psp_kind="withdrawal", psp_amount=2_100, psp_currency="EUR",
        psp_status="paid", our_amount=2_000, our_currency="EUR", our_status="requested",
    )  # fmt: skip
    world.queue = SimpleNamespace(
        psp=psp, player=player, withdrawal=withdrawal, policy=policy, report=report,
        exception=exception, follow_up=(timezone.now() + timedelta(days=1)).strftime(
            "%Y-%m-%dT%H:%M"),
    )  # fmt: skip


def _q(world):
    return world.queue


def _w(world):
    return {"pk": _q(world).withdrawal.pk}


def _post_only(name, allowed, data, **extra):
    return Case(f"payments:{name}", allowed=allowed, kwargs=_w, scoped=True, get=False,
                post=True, post_data=data, **extra)  # fmt: skip


def _upload(world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = CSV + b"mxq-1,W-1,payout,2000,EUR,paid,2026-03-02T10:00:00Z\n"
    return {"psp": _q(world).psp.pk, "file": SimpleUploadedFile("mx.csv", body)}


POLICY_DATA = {
    "review_score": 30, "manual_score": 70, "auto_pay_max_amount": "100",
    "daily_auto_pay_cap": "1000", "approver_limit": "", "kyc0_limit": "0", "kyc1_limit": "50",
    "kyc2_limit": "500", "reason": "Permission matrix",
}  # fmt: skip

CASES = [
    Case("payments:withdrawal_queue", allowed=VIEWERS,
         query="?queue=unassigned&path=review&reason=new_payment_method&amount_min=5"
               "&currency=EUR&age=lt1h"),
    Case("payments:withdrawal_queue", allowed=VIEWERS, query="?export=csv"),
    Case("payments:withdrawal_queue_counts", allowed=VIEWERS),
    Case("payments:withdrawal_review", allowed=VIEWERS, kwargs=_w, scoped=True),
    Case("payments:withdrawal_actions", allowed=VIEWERS, kwargs=_w, scoped=True),
    Case("payments:withdrawal_bulk_approve", allowed=PAYMENTS, get=False, post=True,
         post_data=lambda w: {"selected": [_q(w).withdrawal.pk], "next": "/"}),
    _post_only("withdrawal_claim", REVIEWERS, {}),
    _post_only("withdrawal_release", REVIEWERS, {}),
    _post_only("withdrawal_approve", PAYMENTS, {"note": "Permission matrix"}),
    Case("payments:withdrawal_hold", allowed=REVIEWERS, kwargs=_w, scoped=True, post=True,
         post_data=lambda w: {"reason_code": "aml_check", "follow_up_at": _q(w).follow_up,
                              "note": "Permission matrix"}),
    Case("payments:withdrawal_reject", allowed=PAYMENTS, kwargs=_w, scoped=True, post=True,
         post_data={"reason_code": "other", "note": "Permission matrix"}),
    Case("payments:risk_policy_list", allowed=POLICY_READERS),
    Case("payments:risk_policy_create", allowed=PAYMENTS, post=True,
         post_data=lambda w: {**POLICY_DATA, "brand": w.brand_a.pk, "currency": "EUR"}),
    Case("payments:risk_policy_edit", allowed=PAYMENTS, scoped=True, post=True,
         kwargs=lambda w: {"pk": _q(w).policy.pk}, post_data=POLICY_DATA),
    Case("payments:approver_limit_edit", allowed=PAYMENTS, get=False, post=True,
         post_data=lambda w: {"user": w.users["Risk"].pk, "currency": "EUR", "amount": "10",
                              "reason": "Permission matrix"}),
    Case("payments:reconciliation_list", allowed=RECON_READERS, query="?status=done"),
    Case("payments:reconciliation_upload", allowed=PAYMENTS, post=True, post_data=_upload),
    Case("payments:reconciliation_detail", allowed=RECON_READERS, scoped=True,
         kwargs=lambda w: {"pk": _q(w).report.pk}),
    Case("payments:reconciliation_progress", allowed=RECON_READERS, scoped=True,
         kwargs=lambda w: {"pk": _q(w).report.pk}),
    Case("payments:reconciliation_rerun", allowed=PAYMENTS, scoped=True, get=False, post=True,
         kwargs=lambda w: {"pk": _q(w).report.pk}),
    Case("payments:reconciliation_exception_list", allowed=RECON_READERS,
         query="?status=all&kind=amount_mismatch"),
    Case("payments:reconciliation_exception_list", allowed=RECON_READERS, query="?export=csv"),
    Case("payments:reconciliation_exception_detail", allowed=RECON_READERS, scoped=True,
         kwargs=lambda w: {"pk": _q(w).exception.pk}),
    Case("payments:reconciliation_exception_resolve", allowed=PAYMENTS, scoped=True, get=False,
         post=True, kwargs=lambda w: {"pk": _q(w).exception.pk},
         post_data={"note": "Permission matrix"}),
    Case("payments:reconciliation_exception_adjust", allowed=PAYMENTS, scoped=True, get=False,
         post=True, kwargs=lambda w: {"pk": _q(w).exception.pk},
         post_data=lambda w: {"player": _q(w).player.pk, "balance": "cash",
                              "direction": "credit", "amount": "1.00",
                              "reason_code": "correction", "note": "Permission matrix"}),
]  # fmt: skip
