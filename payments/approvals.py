"""Four-eyes executors: what approving a payments request does (inside the approving
transaction, so a failure rolls the approval back)."""

from backoffice.approvals import register_action

from .services import corrections
from .services import queue as _queue  # noqa: F401  (registers the high-risk withdrawal action)
from .services import reconciliation as _reconciliation  # noqa: F401  (its correction action)

APPROVE_PERMISSION = "payments.approve_adjustment"


@register_action(
    corrections.ADJUSTMENT_ACTION,
    label="Manual adjustment",
    permission=APPROVE_PERMISSION,
    describe=corrections.describe_adjustment,
)
def execute_adjustment(payload: dict, *, request, acting_user) -> dict:
    txn = corrections.execute_adjustment(payload, acting_user=acting_user, approval=request)
    return {"transaction_id": txn.pk}


@register_action(
    corrections.DEPOSIT_CORRECTION_ACTION,
    label="Refund, reversal or chargeback",
    permission=APPROVE_PERMISSION,
    describe=corrections.describe_deposit_correction,
)
def execute_deposit_correction(payload: dict, *, request, acting_user) -> dict:
    deposit = corrections.execute_deposit_correction(
        payload, acting_user=acting_user, approval=request
    )
    return {"payment_id": deposit.pk, "status": deposit.status}


@register_action(
    corrections.LEDGER_REVERSAL_ACTION,
    label="Reversal of a manual adjustment",
    permission=APPROVE_PERMISSION,
    describe=corrections.describe_ledger_reversal,
)
def execute_ledger_reversal(payload: dict, *, request, acting_user) -> dict:
    txn = corrections.execute_ledger_reversal(payload, acting_user=acting_user, approval=request)
    return {"transaction_id": txn.pk}
