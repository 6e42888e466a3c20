"""Manual adjustments, refunds, reversals and chargebacks: the money staff move by hand.

Each has a `do_request_*` service. At or below the currency's approval threshold it executes at
once; above it (or when the currency has no threshold) it becomes a four-eyes approval request,
and the executor registered in `payments/approvals.py` runs the same `execute_*` function inside
the approving transaction. Execution is idempotent: the posting's key comes from the request.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.db import transaction

from backoffice.audit import record_event
from backoffice.models import ApprovalRequest
from backoffice.money import format_money
from backoffice.scoping import check_in_scope
from backoffice.services import do_request_approval
from players.models import Player

from ..choices import AdjustmentReason, BalanceKind, Correction, CorrectionReason, Direction
from ..exceptions import AmountOutOfRange, InsufficientFunds, InvalidTransition, PaymentsError
from ..models import Account, ApprovalThreshold, LedgerTransaction, PaymentKind, PaymentStatus
from . import ledger
from .payments import Step, advance, lock_payment

S = PaymentStatus

ADJUSTMENT_ACTION = "payments.adjustment"
DEPOSIT_CORRECTION_ACTION = "payments.deposit_correction"
LEDGER_REVERSAL_ACTION = "payments.ledger_reversal"

CORRECTION_STATUS = {
    Correction.REFUND: S.REFUNDED,
    Correction.REVERSAL: S.REVERSED,
    Correction.CHARGEBACK: S.CHARGED_BACK,
}


def approval_threshold(currency: str) -> int | None:
    return (
        ApprovalThreshold.objects.filter(currency_id=currency)
        .values_list("amount", flat=True)
        .first()
    )


def needs_approval(currency: str, amount: int) -> bool:
    """Above the currency's threshold, or any amount when the currency has none."""
    threshold = approval_threshold(currency)
    return threshold is None or amount > threshold


def _require(user, perm: str) -> None:
    if user is None or not user.has_perm(perm):
        raise PermissionDenied("Your role does not allow this.")


def _pending_request_exists(action: str, subject) -> bool:
    return ApprovalRequest.objects.filter(
        action=action,
        object_type=subject._meta.label_lower,
        object_id=str(subject.pk),
        status=ApprovalRequest.Status.PENDING,
    ).exists()


# -- manual adjustments ---------------------------------------------------------------------


@transaction.atomic
def do_request_adjustment(
    player: Player,
    *,
    currency: str,
    balance: str,
    direction: str,
    amount: int,
    reason_code: str,
    note: str,
    acting_user,
    idempotency_key: str | None = None,
) -> LedgerTransaction | ApprovalRequest:
    """Credit or debit a player's cash or bonus balance, with a reason.

    Returns the posted transaction, or the approval request when the amount needs a second
    approver. A debit larger than the balance is refused now (and again at execution).
    """
    _require(acting_user, "payments.request_adjustment")
    check_in_scope(acting_user, player, "view")
    if balance not in BalanceKind.values or direction not in Direction.values:
        raise PaymentsError("Pick a balance and a direction.")
    if reason_code not in AdjustmentReason.values:
        raise PaymentsError("Pick a reason code.")
    if not note.strip():
        raise PaymentsError("Explain the adjustment in the note.")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise AmountOutOfRange("The amount must be positive.")
    code = ledger.get_currency(currency).code
    payload = {
        "player_id": player.pk,
        "currency": code,
        "balance": balance,
        "direction": direction,
        "amount": amount,
        "reason_code": reason_code,
        "note": note,
        "idempotency_key": f"adjustment:{idempotency_key or uuid.uuid4().hex}",
        "requested_by": acting_user.pk,
    }
    if direction == Direction.DEBIT:
        wallet = ledger.get_wallet(player, code)
        available = wallet[balance].balance
        if available < amount:
            raise InsufficientFunds(
                f"The player has {format_money(available, code)} {balance}; "
                f"cannot debit {format_money(amount, code)}."
            )
    if needs_approval(code, amount):
        return do_request_approval(
            ADJUSTMENT_ACTION,
            payload,
            acting_user=acting_user,
            reason=note,
            summary=describe_adjustment(payload, player),
            brand=player.brand_id,
            subject=player,
        )
    return execute_adjustment(payload, acting_user=acting_user, approval=None)


def describe_adjustment(payload: dict, player: Player | None = None) -> str:
    who = player.username if player is not None else f"player #{payload['player_id']}"
    verb = "Credit" if payload["direction"] == Direction.CREDIT else "Debit"
    money = format_money(payload["amount"], payload["currency"])
    return f"{verb} {money} {payload['balance']} for {who} ({payload['reason_code']})"


def execute_adjustment(payload: dict, *, acting_user, approval=None) -> LedgerTransaction:
    """Post a manual adjustment described by `payload` (from the form or the approval)."""
    player = Player.objects.get(pk=payload["player_id"])
    code = payload["currency"]
    amount = int(payload["amount"])
    wallet = ledger.get_wallet(player, code)
    house_kind = (
        Account.Kind.ADJUSTMENTS
        if payload["balance"] == BalanceKind.CASH
        else Account.Kind.BONUS_COST
    )
    house = ledger.get_house_account(player.brand_id, house_kind, code)
    target = wallet[payload["balance"]]
    sign = 1 if payload["direction"] == Direction.CREDIT else -1
    txn = ledger.do_post_transfer(
        idempotency_key=payload["idempotency_key"],
        kind=LedgerTransaction.Kind.ADJUSTMENT,
        legs=[(target, sign * amount), (house, -sign * amount)],
        brand=player.brand_id,
        player=player,
        description=payload["note"][:300],
        reason_code=payload["reason_code"],
        approval=approval,
        acting_user=acting_user,
    )
    if not getattr(txn, "replayed", False):
        record_event(
            "payments.adjustment.posted",
            actor=acting_user,
            subject=player,
            summary=describe_adjustment(payload, player),
            reason=payload["note"],
            after={"transaction_id": txn.pk, "approval_id": getattr(approval, "pk", None)},
        )
    return txn


# -- refunds, reversals and chargebacks of deposits -----------------------------------------


@transaction.atomic
def do_request_deposit_correction(
    deposit_id: int, *, operation: str, reason_code: str, note: str, acting_user
):
    """Refund, reverse or record a chargeback on a credited deposit.

    Returns the deposit when done at once, or the approval request above the threshold. Only
    one request per deposit may wait for approval at a time.
    """
    if operation not in CORRECTION_STATUS:
        raise PaymentsError("Unknown operation.")
    if reason_code not in CorrectionReason.values:
        raise PaymentsError("Pick a reason code.")
    if not note.strip():
        raise PaymentsError("Explain why in the note.")
    deposit = lock_payment(deposit_id, PaymentKind.DEPOSIT)
    subject = deposit.as_kind()
    check_in_scope(acting_user, subject, "refund")
    target = CORRECTION_STATUS[operation]
    if not deposit.can_transition(target):
        raise InvalidTransition(
            f"Deposit {deposit.reference} is {deposit.get_status_display().lower()}; only a "
            f"credited deposit can be {S(target).label.lower()}."
        )
    payload = {
        "payment_id": deposit.pk,
        "operation": operation,
        "reason_code": reason_code,
        "note": note,
        "amount": deposit.amount,
        "currency": deposit.currency_id,
        "reference": deposit.reference,
    }
    if needs_approval(deposit.currency_id, deposit.amount):
        if _pending_request_exists(DEPOSIT_CORRECTION_ACTION, subject):
            raise PaymentsError(
                f"A correction of {deposit.reference} is already awaiting approval."
            )
        return do_request_approval(
            DEPOSIT_CORRECTION_ACTION,
            payload,
            acting_user=acting_user,
            reason=note,
            summary=describe_deposit_correction(payload),
            brand=deposit.brand_id,
            subject=subject,
        )
    return execute_deposit_correction(payload, acting_user=acting_user, approval=None)


def describe_deposit_correction(payload: dict) -> str:
    money = format_money(payload["amount"], payload["currency"])
    return f"{Correction(payload['operation']).label} of deposit {payload['reference']} ({money})"


def execute_deposit_correction(payload: dict, *, acting_user, approval=None):
    deposit = lock_payment(payload["payment_id"], PaymentKind.DEPOSIT)
    target = CORRECTION_STATUS[payload["operation"]]
    advance(
        deposit,
        [Step(target, "staff", payload["reason_code"], payload["note"])],
        acting_user=acting_user,
        approval=approval,
    )
    record_event(
        f"payments.deposit.{payload['operation']}",
        actor=acting_user,
        subject=deposit.as_kind(),
        summary=describe_deposit_correction(payload),
        reason=payload["note"],
        after={"status": target, "approval_id": getattr(approval, "pk", None)},
    )
    return deposit


# -- reversing a manual adjustment ----------------------------------------------------------


@transaction.atomic
def do_request_ledger_reversal(
    transaction_id: int, *, reason_code: str, note: str, acting_user
) -> LedgerTransaction | ApprovalRequest:
    """Reverse a manual adjustment made in error (a new transaction pointing at it).

    Payment postings are corrected through their payment (refund, reversal), never here, so
    the payment's status and its ledger stay in step.
    """
    _require(acting_user, "payments.request_adjustment")
    txn = LedgerTransaction.objects.get(pk=transaction_id)
    check_in_scope(acting_user, txn, "view")
    if txn.kind != LedgerTransaction.Kind.ADJUSTMENT:
        raise PaymentsError(
            "Only manual adjustments are reversed here; correct payments on the payment."
        )
    if LedgerTransaction.objects.filter(reverses=txn).exists():
        raise PaymentsError(f"Transaction #{txn.pk} has already been reversed.")
    if reason_code not in CorrectionReason.values:
        raise PaymentsError("Pick a reason code.")
    if not note.strip():
        raise PaymentsError("Explain why in the note.")
    amounts = list(txn.entries.filter(player__isnull=False).values_list("amount", "currency_id"))
    amount = max(abs(a) for a, _ in amounts)
    currency = amounts[0][1]
    payload = {
        "transaction_id": txn.pk,
        "reason_code": reason_code,
        "note": note,
        "amount": amount,
        "currency": currency,
    }
    if needs_approval(currency, amount):
        if _pending_request_exists(LEDGER_REVERSAL_ACTION, txn):
            raise PaymentsError(f"A reversal of #{txn.pk} is already awaiting approval.")
        return do_request_approval(
            LEDGER_REVERSAL_ACTION,
            payload,
            acting_user=acting_user,
            reason=note,
            summary=describe_ledger_reversal(payload),
            brand=txn.brand_id,
            subject=txn,
        )
    return execute_ledger_reversal(payload, acting_user=acting_user, approval=None)


def describe_ledger_reversal(payload: dict) -> str:
    money = format_money(payload["amount"], payload["currency"])
    return f"Reverse adjustment #{payload['transaction_id']} ({money})"


def execute_ledger_reversal(payload: dict, *, acting_user, approval=None) -> LedgerTransaction:
    txn = ledger.do_reverse_transaction(
        payload["transaction_id"],
        acting_user=acting_user,
        description=payload["note"][:300],
        reason_code=payload["reason_code"],
        approval=approval,
    )
    record_event(
        "payments.ledger.reversed",
        actor=acting_user,
        subject=txn,
        summary=describe_ledger_reversal(payload),
        reason=payload["note"],
    )
    return txn
