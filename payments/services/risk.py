"""Risk decisions on withdrawals: assessing a new withdrawal and acting on its path, and the
Payments leads' configuration (risk policies per brand and currency, personal approval limits).

A withdrawal is assessed once, in the transaction that requests it (`do_request_withdrawal`
calls `do_assess_withdrawal`). The path decides what happens next:

    auto_pay  the day's cap for the brand and currency is drawn on (one conditional UPDATE);
              the system approves it and the payout goes to the PSP after commit. When the cap
              is spent, it waits for review instead (reason `daily_cap_reached`).
    review    waits in the queue for one approver.
    manual    waits in the queue for two distinct approvers (a four-eyes request).

Waiting withdrawals keep the status the payments service gave them: requested, or in review
when a rule or a person held them. The queue shows the path and its reasons.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice.audit import record_event
from backoffice.money import format_money
from backoffice.scoping import brand_ids_for

from ..exceptions import PaymentsError
from ..models import (
    ApproverLimit,
    Currency,
    Payment,
    PaymentStatus,
    RiskAssessment,
    RiskPath,
    RiskPolicy,
    WithdrawalReview,
)
from ..risk import engine
from . import queue

S = PaymentStatus

MANAGE_PERMISSION = "payments.manage_riskpolicy"

POLICY_FIELDS = (
    "review_score",
    "manual_score",
    "auto_pay_max_amount",
    "daily_auto_pay_cap",
    "approver_limit",
    "kyc0_limit",
    "kyc1_limit",
    "kyc2_limit",
)


def policy_for(brand_id: int, currency: str) -> RiskPolicy | None:
    return RiskPolicy.objects.filter(brand_id=brand_id, currency_id=currency).first()


# -- assessing a new withdrawal -------------------------------------------------------------


@transaction.atomic
def do_assess_withdrawal(withdrawal: Payment, *, now: datetime | None = None) -> RiskAssessment:
    """Assess a withdrawal that was just requested, store the assessment with its queue row,
    and act on the path (see the module's docstring).

    Runs in the requesting transaction: the payment is not visible to anyone else yet, so it
    needs no lock. Calling it again returns the stored assessment and changes nothing.
    """
    existing = RiskAssessment.objects.filter(pk=withdrawal.pk).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    policy = policy_for(withdrawal.brand_id, withdrawal.currency_id)
    result = engine.assess(withdrawal, policy=policy, now=now)
    path, reasons = result.path, list(result.reasons)
    if path == RiskPath.AUTO_PAY and withdrawal.status != S.REQUESTED:
        # A rule of the payments service already held it (a payout to a new instrument).
        path, reasons = RiskPath.REVIEW, [withdrawal.status_reason or "held"]
    auto_paid = False
    if path == RiskPath.AUTO_PAY:
        auto_paid = queue.reserve_auto_pay(policy, withdrawal, day=now.date())
        if not auto_paid:
            path, reasons = RiskPath.REVIEW, [engine.DAILY_CAP_REACHED]
    assessment = RiskAssessment.objects.create(
        withdrawal=withdrawal,
        brand_id=withdrawal.brand_id,
        score=result.score,
        path=path,
        reasons=reasons,
        factors=list(result.factors),
        policy=result.policy,
        auto_paid=auto_paid,
        engine_version=engine.ENGINE_VERSION,
        assessed_at=now,
    )
    WithdrawalReview.objects.create(withdrawal=withdrawal, brand_id=withdrawal.brand_id)
    if auto_paid:
        queue.do_auto_pay_withdrawal(withdrawal, assessment)
    return assessment


# -- policies and limits (Payments leads) ---------------------------------------------------


def _require_lead(user) -> None:
    if user is None or not user.is_active or not user.has_perm(MANAGE_PERMISSION):
        raise PermissionDenied("Only a Payments lead may change risk policies and limits.")


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PaymentsError("Say why in the reason: it goes into the audit trail.")
    return reason


def _check_policy_values(values: dict) -> None:
    if not 0 <= values["review_score"] <= values["manual_score"] <= 100:
        raise PaymentsError(
            "Scores go 0 ≤ review ≤ manual ≤ 100: the manual threshold cannot be below the "
            "review threshold."
        )
    for name in POLICY_FIELDS[2:]:
        value = values[name]
        if value is None and name == "approver_limit":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PaymentsError(f"{RiskPolicy._meta.get_field(name).verbose_name} is 0 or more.")
    if values["auto_pay_max_amount"] > values["daily_auto_pay_cap"]:
        raise PaymentsError(
            "The largest auto-paid withdrawal cannot be above the daily cap: it could never "
            "auto-pay."
        )


def _describe(values: dict, currency: str) -> dict:
    out = dict(values)
    for name in POLICY_FIELDS[2:]:
        if out.get(name) is not None:
            out[f"{name}_display"] = format_money(out[name], currency)
    return out


@transaction.atomic
def do_save_risk_policy(
    *, brand_id: int, currency: str, values: dict, reason: str, acting_user
) -> RiskPolicy:
    """Create or change the risk policy of one brand and currency (Payments leads only).

    `values` holds every field of `POLICY_FIELDS`. The change is kept in the policy's history
    and as an audit event with the values before and after.
    """
    _require_lead(acting_user)
    reason = _clean_reason(reason)
    ids = brand_ids_for(acting_user)
    if ids is not None and brand_id not in ids:
        raise PermissionDenied("That brand is outside your scope.")
    if not Currency.objects.filter(code=currency).exists():
        raise PaymentsError(f"Unknown currency {currency}.")
    values = {name: values[name] for name in POLICY_FIELDS}
    _check_policy_values(values)
    policy = (
        RiskPolicy.objects.select_for_update()
        .filter(brand_id=brand_id, currency_id=currency)
        .first()
    )
    before = None if policy is None else {n: getattr(policy, n) for n in POLICY_FIELDS}
    if before == values:
        raise PaymentsError("Nothing changed.")
    if policy is None:
        policy = RiskPolicy(brand_id=brand_id, currency_id=currency)
    for name, value in values.items():
        setattr(policy, name, value)
    policy.updated_at = timezone.now()
    policy._history_user = acting_user
    policy._change_reason = reason
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError:
        raise PaymentsError("A policy for this brand and currency was just created: reload.")
    record_event(
        "payments.risk_policy.created" if before is None else "payments.risk_policy.changed",
        actor=acting_user,
        subject=policy,
        summary=f"Withdrawal risk policy for {policy.brand} {currency} "
        f"{'created' if before is None else 'changed'}",
        reason=reason,
        before=None if before is None else _describe(before, currency),
        after=_describe(values, currency),
    )
    return policy


@transaction.atomic
def do_set_approver_limit(
    *, user, currency: str, amount: int | None, reason: str, acting_user
) -> ApproverLimit | None:
    """Set (or, with `amount=None`, remove) a person's own approval limit in a currency.

    Nobody sets their own limit: another lead must.
    """
    _require_lead(acting_user)
    reason = _clean_reason(reason)
    if user.pk == acting_user.pk:
        raise PermissionDenied("You cannot set your own approval limit: ask another lead.")
    if not Currency.objects.filter(code=currency).exists():
        raise PaymentsError(f"Unknown currency {currency}.")
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int) or amount < 0
    ):
        raise PaymentsError("The limit is 0 or more.")
    row = ApproverLimit.objects.select_for_update().filter(user=user, currency_id=currency).first()
    before = None if row is None else {"amount": row.amount}
    if amount is None:
        if row is None:
            raise PaymentsError(f"{user} has no personal limit in {currency}.")
        row._history_user = acting_user
        row._change_reason = reason
        row.delete()
        row = None
    else:
        if row is None:
            row = ApproverLimit(user=user, currency_id=currency, amount=amount)
        elif row.amount == amount:
            raise PaymentsError("Nothing changed.")
        row.amount = amount
        row.updated_at = timezone.now()
        row._history_user = acting_user
        row._change_reason = reason
        row.save()
    record_event(
        "payments.approver_limit.changed",
        actor=acting_user,
        subject=user,
        summary=(
            f"Approval limit of {user} in {currency} "
            + ("removed" if amount is None else f"set to {format_money(amount, currency)}")
        ),
        reason=reason,
        before=before,
        after=None if amount is None else {"amount": amount},
    )
    return row
