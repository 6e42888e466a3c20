"""Permission-matrix cases for the payments pages (/payments/) and the PSP webhook.

Who may do what (from `payments/roles.py`): Support, Payments, Risk, Compliance and Auditor
see deposits and withdrawals; the ledger and accounts are for Payments, Risk, Compliance and
Auditor; PSPs, callbacks and thresholds are Payments' (Auditor reads them); only Payments
switches PSPs, corrects deposits, adjusts balances and sets thresholds. The webhook is public.
"""

from __future__ import annotations

from types import SimpleNamespace

from tests.matrix import ALL_ROLES, Case

PAYMENT_VIEWERS = frozenset({"Support", "Payments", "Risk", "Compliance", "Auditor"})
LEDGER_VIEWERS = frozenset({"Payments", "Risk", "Compliance", "Auditor"})
PSP_VIEWERS = frozenset({"Payments", "Auditor"})
PAYMENTS = frozenset({"Payments"})


def build(world: SimpleNamespace) -> None:
    from payments.models import Currency, PaymentMethod, PspInboxEvent, PspWebhookRejection
    from payments.psp.base import PspEvent
    from payments.services import corrections
    from payments.services.payments import do_request_withdrawal
    from payments.services.psp_events import apply_event
    from tests.factories import PaymentMethodFactory, PlayerFactory, PspFactory

    # migration data, gone if a transactional test flushed a reused test database
    Currency.objects.get_or_create(code="EUR", defaults={"name": "Euro", "exponent": 2})
    psp = PspFactory(brand=world.brand_a, code="mx-cardpay", name="Matrix CardPay")
    method = PaymentMethodFactory(psp=psp, kind=PaymentMethod.Kind.CARD, currency_id="EUR")
    player = PlayerFactory(brand=world.brand_a, username="mx-payer", currency="EUR", country="MT")
    inbox = PspInboxEvent.objects.create(
        psp=psp, brand=world.brand_a, event_id="mx-evt-1", event_type="payment.captured",
        psp_reference="mx-pay-1", body="{}", status=PspInboxEvent.Status.PENDING,
    )  # fmt: skip
    event = PspEvent(
        event_id="mx-evt-1", event_type="payment.captured", payment_kind="deposit",
        status="captured", psp_reference="mx-pay-1", player_ref=player.external_ref,
        amount=50_000, currency="EUR", method="card", country="MT",
    )  # fmt: skip
    deposit, _, _ = apply_event(psp, event, inbox)
    withdrawal = do_request_withdrawal(player, method=method, amount=1_000, instrument="VISA 1")
    adjustment = corrections.execute_adjustment(
        {
            "player_id": player.pk, "currency": "EUR", "balance": "cash", "direction": "credit",
            "amount": 500, "reason_code": "goodwill", "note": "matrix",
            "idempotency_key": "adjustment:matrix",
        },
        acting_user=world.users["Payments"],
    )  # fmt: skip
    PspWebhookRejection.objects.create(
        psp=psp, brand=world.brand_a, psp_code=psp.code, reason="bad_signature"
    )
    world.payments = SimpleNamespace(
        psp=psp, method=method, player=player, deposit=deposit, withdrawal=withdrawal,
        adjustment=adjustment,
    )  # fmt: skip


def _p(world):
    return world.payments


CASES = [
    Case("payments:transaction_list", allowed=PAYMENT_VIEWERS,
         query="?kind=deposit&status=credited&amount_min=10&currency=EUR"),
    Case("payments:transaction_list", allowed=PAYMENT_VIEWERS, query="?export=csv"),
    Case("payments:transaction_detail", allowed=PAYMENT_VIEWERS, scoped=True,
         kwargs=lambda w: {"pk": _p(w).deposit.pk}),
    Case("payments:transaction_detail", allowed=PAYMENT_VIEWERS, scoped=True,
         kwargs=lambda w: {"pk": _p(w).withdrawal.pk}),
    Case("payments:deposit_correction", allowed=PAYMENTS, scoped=True, post=True,
         kwargs=lambda w: {"pk": _p(w).deposit.pk, "operation": "refund"},
         post_data={"reason_code": "player_request", "note": "Permission matrix"}),
    Case("payments:entry_list", allowed=LEDGER_VIEWERS, query="?account_kind=cash"),
    Case("payments:ledger_transaction_detail", allowed=LEDGER_VIEWERS, scoped=True,
         kwargs=lambda w: {"pk": _p(w).adjustment.pk}),
    Case("payments:ledger_reversal", allowed=PAYMENTS, scoped=True, post=True,
         kwargs=lambda w: {"pk": _p(w).adjustment.pk},
         post_data={"reason_code": "duplicate", "note": "Permission matrix"}),
    Case("payments:account_list", allowed=LEDGER_VIEWERS, query="?owner=house"),
    Case("payments:adjustment_create", allowed=PAYMENTS, scoped=True, post=True,
         kwargs=lambda w: {"pk": _p(w).player.pk},
         post_data={"currency": "EUR", "balance": "cash", "direction": "credit",
                    "amount": "12.50", "reason_code": "goodwill", "note": "Permission matrix",
                    "idempotency_key": "matrix-form"}),
    Case("payments:psp_list", allowed=PSP_VIEWERS, query="?enabled=on"),
    Case("payments:psp_switch", allowed=PAYMENTS, scoped=True, post=True,
         kwargs=lambda w: {"pk": _p(w).psp.pk}, post_data={"reason": "Permission matrix"}),
    Case("payments:method_switch", allowed=PAYMENTS, scoped=True, post=True,
         kwargs=lambda w: {"pk": _p(w).method.pk}, post_data={"reason": "Permission matrix"}),
    Case("payments:event_list", allowed=PSP_VIEWERS, query="?status=applied"),
    Case("payments:rejection_list", allowed=PSP_VIEWERS),
    Case("payments:threshold_list", allowed=PSP_VIEWERS),
    Case("payments:threshold_edit", allowed=PAYMENTS, post=True, kwargs={"currency": "EUR"},
         post_data={"amount": "250.00", "reason": "Permission matrix"}),
    # PSPs call this without a session; an unsigned delivery is refused with 401, not a login.
    Case("psp_webhook", allowed=ALL_ROLES, public=True, get=False, post=True,
         kwargs=lambda w: {"psp_code": _p(w).psp.code}, post_data={"id": "unsigned"}),
]  # fmt: skip
