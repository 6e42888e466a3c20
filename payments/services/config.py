"""Configuration writes: switching PSPs and payment methods on and off, approval thresholds."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from backoffice.audit import record_event
from backoffice.money import format_money
from backoffice.scoping import check_in_scope

from ..exceptions import PaymentsError
from ..models import ApprovalThreshold, PaymentMethod, Psp
from . import ledger


def _switch(obj, *, enabled: bool, reason: str, acting_user, action: str) -> None:
    if not reason.strip():
        raise PaymentsError("Say why in the reason.")
    check_in_scope(acting_user, obj, "change")
    if obj.is_enabled == enabled:
        raise PaymentsError(f"{obj} is already {'on' if enabled else 'off'}.")
    before = {"is_enabled": obj.is_enabled, "status_reason": obj.status_reason}
    obj.is_enabled = enabled
    obj.status_reason = reason.strip()[:300]
    obj._history_user = acting_user
    obj._change_reason = reason
    obj.save(update_fields=["is_enabled", "status_reason"])
    record_event(
        action,
        actor=acting_user,
        subject=obj,
        summary=f"{'Switched on' if enabled else 'Switched off'} {obj}",
        reason=reason,
        before=before,
        after={"is_enabled": enabled, "status_reason": obj.status_reason},
    )


@transaction.atomic
def do_set_psp_enabled(psp_id: int, *, enabled: bool, reason: str, acting_user) -> Psp:
    """Switch a PSP on or off. Off stops new payments through it; its callbacks still land."""
    psp = Psp.objects.select_for_update().get(pk=psp_id)
    _switch(
        psp, enabled=enabled, reason=reason, acting_user=acting_user, action="payments.psp.switched"
    )
    return psp


@transaction.atomic
def do_set_method_enabled(
    method_id: int, *, enabled: bool, reason: str, acting_user
) -> PaymentMethod:
    """Switch one payment method (PSP × kind × country × currency) on or off."""
    method = PaymentMethod.objects.select_for_update().select_related("psp").get(pk=method_id)
    _switch(
        method,
        enabled=enabled,
        reason=reason,
        acting_user=acting_user,
        action="payments.method.switched",
    )
    return method


@transaction.atomic
def do_set_approval_threshold(
    currency: str, *, amount: int, reason: str, acting_user
) -> ApprovalThreshold:
    """Set the amount above which corrections in `currency` need a second approver."""
    if acting_user is None or not acting_user.has_perm("payments.change_approvalthreshold"):
        raise PermissionDenied("Your role does not allow changing thresholds.")
    if not reason.strip():
        raise PaymentsError("Say why in the reason.")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise PaymentsError("The threshold is zero or more.")
    code = ledger.get_currency(currency).code
    threshold = ApprovalThreshold.objects.select_for_update().filter(currency_id=code).first()
    before = None if threshold is None else {"amount": threshold.amount}
    if threshold is None:
        threshold = ApprovalThreshold(currency_id=code, amount=amount)
    threshold.amount = amount
    threshold._history_user = acting_user
    threshold._change_reason = reason
    threshold.save()
    record_event(
        "payments.threshold.changed",
        actor=acting_user,
        subject=threshold,
        summary=f"Approval threshold for {code} set to {format_money(amount, code)}",
        reason=reason,
        before=before,
        after={"amount": amount},
    )
    return threshold
