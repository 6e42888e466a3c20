"""The withdrawal queue's writes: claim, release, approve, hold, reject, bulk approve, auto-pay
within the daily caps, and the payout attempts that keep a payout from being sent twice.

Locks are always taken in the same order, payment row first, then its queue row
(`WithdrawalReview`), and bulk actions lock their payments in id order, so two people working
the same rows wait for each other instead of deadlocking.

Who may act:
- claim, release and hold: `payments.review_withdrawal` (Payments, Risk);
- approve, reject, bulk approve: `payments.approve_withdrawal` (Payments), within the person's
  approval limit (`ApproverLimit`, else the policy's `approver_limit`);
- a withdrawal someone has claimed is theirs: others cannot act on it until it is released.

A manual-path withdrawal needs two distinct approvers: the first approval opens a four-eyes
request (`MANUAL_APPROVAL_ACTION`), the second approver decides it (from the queue or the
approvals page), and the registered executor approves the withdrawal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backoffice.approvals import register_action
from backoffice.audit import record_event
from backoffice.models import ApprovalRequest
from backoffice.money import format_money
from backoffice.scoping import check_in_scope
from backoffice.services import do_cancel_approval, do_decide_approval, do_request_approval

from ..choices import WithdrawalReason
from ..exceptions import AboveApprovalLimit, ClaimedByOther, InvalidTransition, PaymentsError
from ..models import (
    ApproverLimit,
    AutoPayUsage,
    Payment,
    PaymentKind,
    PaymentStatus,
    PaymentTransition,
    PayoutAttempt,
    RiskAssessment,
    RiskPath,
    RiskPolicy,
    WithdrawalReview,
)
from . import payments as payment_services

S = PaymentStatus
Actor = PaymentTransition.Actor

AWAITING_DECISION = (S.REQUESTED, S.IN_REVIEW)
MANUAL_APPROVAL_ACTION = "payments.withdrawal_approval"
APPROVE_PERMISSION = "payments.approve_withdrawal"
BULK_MAX = 100
HOLD_MAX = timedelta(days=30)


# -- limits ---------------------------------------------------------------------------------


def approval_limit(user, brand_id: int, currency: str) -> int | None:
    """The most `user` may approve at once in `currency` for `brand_id` (None: no limit).

    Their personal limit in the currency wins; else the brand's policy's `approver_limit`.
    """
    personal = (
        ApproverLimit.objects.filter(user_id=user.pk, currency_id=currency)
        .values_list("amount", flat=True)
        .first()
    )
    if personal is not None:
        return personal
    return (
        RiskPolicy.objects.filter(brand_id=brand_id, currency_id=currency)
        .values_list("approver_limit", flat=True)
        .first()
    )


def _check_limit(user, withdrawals: list[Payment]) -> None:
    """Refuse unless the total per currency (and per brand, where the brand's policy sets the
    limit) is within what `user` may approve at once."""
    by_currency: dict[str, int] = defaultdict(int)
    by_brand: dict[tuple[int, str], int] = defaultdict(int)
    for w in withdrawals:
        by_currency[w.currency_id] += w.amount
        by_brand[(w.brand_id, w.currency_id)] += w.amount
    personal = dict(
        ApproverLimit.objects.filter(
            user_id=user.pk, currency_id__in=list(by_currency)
        ).values_list("currency_id", "amount")
    )
    for currency, total in sorted(by_currency.items()):
        if currency in personal and total > personal[currency]:
            raise AboveApprovalLimit(
                f"{format_money(total, currency)} is above your approval limit of "
                f"{format_money(personal[currency], currency)}: ask a colleague with a higher "
                "limit, or approve fewer at once."
            )
    policies = {
        (p.brand_id, p.currency_id): p.approver_limit
        for p in RiskPolicy.objects.filter(
            brand_id__in={b for b, _ in by_brand}, currency_id__in=list(by_currency)
        )
    }
    for (brand_id, currency), total in sorted(by_brand.items()):
        if currency in personal:
            continue
        limit = policies.get((brand_id, currency))
        if limit is not None and total > limit:
            raise AboveApprovalLimit(
                f"{format_money(total, currency)} is above the approval limit of "
                f"{format_money(limit, currency)} for one approver: ask a colleague with a "
                "personal limit, or approve fewer at once."
            )


# -- auto-pay -------------------------------------------------------------------------------


def reserve_auto_pay(policy: RiskPolicy, withdrawal: Payment, *, day: date) -> bool:
    """Draw `withdrawal.amount` on the brand's auto-pay cap in its currency for `day`.

    True if it fits. One conditional UPDATE (`used + amount <= cap`) on the day's row, created
    first if missing (ON CONFLICT DO NOTHING): concurrent requests queue on the row lock and
    each re-checks the condition against the committed total, so the cap is never exceeded.
    """
    key = {"brand_id": withdrawal.brand_id, "currency_id": withdrawal.currency_id, "day": day}
    AutoPayUsage.objects.bulk_create([AutoPayUsage(**key)], ignore_conflicts=True)
    room = policy.daily_auto_pay_cap - withdrawal.amount
    if room < 0:
        return False
    updated = AutoPayUsage.objects.filter(**key, used_amount__lte=room).update(
        used_amount=F("used_amount") + withdrawal.amount, used_count=F("used_count") + 1
    )
    return updated == 1


def do_auto_pay_withdrawal(withdrawal: Payment, assessment: RiskAssessment) -> None:
    """Approve a withdrawal the assessment sent down the auto-pay path (its cap already drawn
    on) and send the payout after commit. Runs in the requesting transaction."""
    step = payment_services.Step(
        S.APPROVED, Actor.SYSTEM, "auto_pay", f"Auto-pay: risk score {assessment.score}/100"
    )
    payment_services.advance(withdrawal, [step])
    record_event(
        "payments.withdrawal.auto_paid",
        actor_label="system",
        subject=withdrawal.as_kind(),
        summary=f"Auto-paid withdrawal {withdrawal.reference} "
        f"({format_money(withdrawal.amount, withdrawal.currency_id)}, score {assessment.score})",
    )
    from ..tasks import enqueue_payout

    withdrawal_id = withdrawal.pk
    transaction.on_commit(lambda: enqueue_payout(withdrawal_id))


# -- payout attempts ------------------------------------------------------------------------


def open_payout_attempt(withdrawal: Payment) -> PayoutAttempt:
    """Record the payout request about to be sent. Call in the transaction that moves the
    withdrawal to sent_to_psp, holding its row lock: the attempt key is unique, so a second
    sender of the same attempt fails here and sends nothing."""
    number = PayoutAttempt.objects.filter(withdrawal_id=withdrawal.pk).count() + 1
    return PayoutAttempt.objects.create(
        withdrawal_id=withdrawal.pk,
        brand_id=withdrawal.brand_id,
        number=number,
        attempt_key=f"{withdrawal.reference}-{number}",
    )


def record_payout_outcome(attempt: PayoutAttempt, outcome: str, message: str = "") -> None:
    """What the PSP answered to one attempt (accepted, declined, or nothing: unknown)."""
    attempt.outcome = outcome
    attempt.message = message[:300]
    attempt.answered_at = timezone.now()
    attempt._change_reason = f"PSP answer: {outcome}"
    attempt.save(update_fields=["outcome", "message", "answered_at"])


# -- locking and the claim rule -------------------------------------------------------------


def _lock(withdrawal_id: int, user, action: str) -> tuple[Payment, WithdrawalReview]:
    """The withdrawal and its queue row, locked in that order, after checking scope and that it
    still waits for a decision."""
    withdrawal = payment_services.lock_payment(withdrawal_id, PaymentKind.WITHDRAWAL)
    check_in_scope(user, withdrawal.as_kind(), action)
    if withdrawal.status not in AWAITING_DECISION:
        raise InvalidTransition(
            f"Withdrawal {withdrawal.reference} is {withdrawal.get_status_display().lower()}: "
            "it no longer waits for a decision."
        )
    review = (
        WithdrawalReview.objects.select_for_update(of=("self",))
        .select_related("assignee", "approval")
        .filter(pk=withdrawal.pk)
        .first()
    )
    if review is None:  # requested before assessments existed: the queue row appears now
        review = WithdrawalReview.objects.create(
            withdrawal=withdrawal, brand_id=withdrawal.brand_id
        )
    return withdrawal, review


def _check_claim(withdrawal: Payment, review: WithdrawalReview, user) -> None:
    if review.assignee_id and review.assignee_id != user.pk:
        raise ClaimedByOther(
            f"{withdrawal.reference} is claimed by {review.assignee.get_username()}: they work "
            "it until they release it."
        )


def _save_review(review: WithdrawalReview, user, reason: str, fields: list[str]) -> None:
    review.updated_at = timezone.now()
    review._history_user = user
    review._change_reason = reason
    review.save(update_fields=[*fields, "updated_at"])


def _path(withdrawal: Payment) -> str:
    path = RiskAssessment.objects.filter(pk=withdrawal.pk).values_list("path", flat=True).first()
    # Not assessed (requested before assessments existed): one approver, as before.
    return path or RiskPath.REVIEW


def _pending_approval(review: WithdrawalReview) -> ApprovalRequest | None:
    req = review.approval
    if req is not None and req.status == ApprovalRequest.Status.PENDING:
        return req
    return None


def _clear_hold(review: WithdrawalReview) -> list[str]:
    if not review.hold_reason and review.follow_up_at is None:
        return []
    review.hold_reason, review.hold_note, review.follow_up_at = "", "", None
    return ["hold_reason", "hold_note", "follow_up_at"]


# -- claim and release ----------------------------------------------------------------------


@transaction.atomic
def do_claim_withdrawal(withdrawal_id: int, *, acting_user) -> WithdrawalReview:
    """Take a waiting withdrawal so nobody else works it. Of two people claiming at once, the
    first to lock the row wins; the other gets `ClaimedByOther`. Claiming your own again is a
    no-op."""
    withdrawal, review = _lock(withdrawal_id, acting_user, "review")
    if review.assignee_id == acting_user.pk:
        return review
    _check_claim(withdrawal, review, acting_user)
    review.assignee, review.claimed_at = acting_user, timezone.now()
    _save_review(review, acting_user, "claimed", ["assignee", "claimed_at"])
    record_event(
        "payments.withdrawal.claimed",
        actor=acting_user,
        subject=withdrawal.as_kind(),
        summary=f"Claimed withdrawal {withdrawal.reference}",
    )
    return review


@transaction.atomic
def do_release_withdrawal(withdrawal_id: int, *, acting_user) -> WithdrawalReview:
    """Give a claimed withdrawal back to the queue. The holder releases their own; a Payments
    lead may release anyone's (someone on leave)."""
    withdrawal, review = _lock(withdrawal_id, acting_user, "review")
    if review.assignee_id is None:
        raise PaymentsError(f"{withdrawal.reference} is not claimed.")
    holder = review.assignee
    if holder.pk != acting_user.pk and not acting_user.has_perm("payments.manage_riskpolicy"):
        raise ClaimedByOther(
            f"{withdrawal.reference} is claimed by {holder.get_username()}: only they or a "
            "Payments lead can release it."
        )
    review.assignee, review.claimed_at = None, None
    _save_review(review, acting_user, "released", ["assignee", "claimed_at"])
    record_event(
        "payments.withdrawal.released",
        actor=acting_user,
        subject=withdrawal.as_kind(),
        summary=f"Released withdrawal {withdrawal.reference} (held by {holder.get_username()})",
    )
    return review


# -- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What an approval from the queue did: `approved` the withdrawal, or (manual path) gave
    the `first` of two approvals and opened `approval`."""

    withdrawal: Payment
    outcome: str  # "approved" | "first"
    approval: ApprovalRequest | None = None

    @property
    def message(self) -> str:
        ref = self.withdrawal.reference
        if self.outcome == "first":
            return f"First approval of {ref} given: a second approver must confirm it."
        return f"Withdrawal {ref} approved: the payout goes to the PSP."


def _approve(withdrawal: Payment, review: WithdrawalReview, user, note: str) -> None:
    """Approve through the payments service (which sends the payout after commit)."""
    payment_services.do_approve_withdrawal(withdrawal.pk, acting_user=user, note=note)
    withdrawal.refresh_from_db(fields=["status", "status_changed_at", "status_reason"])
    fields = _clear_hold(review)
    if review.assignee_id is None:
        review.assignee, review.claimed_at = user, timezone.now()
        fields += ["assignee", "claimed_at"]
    if fields:
        _save_review(review, user, "approved", fields)


@transaction.atomic
def do_approve_queued_withdrawal(withdrawal_id: int, *, acting_user, note: str = "") -> Decision:
    """Approve a waiting withdrawal from the queue, within the approver's limit.

    Review path (and withdrawals never assessed): approved at once. Manual path: the first
    approval opens a four-eyes request and releases the claim; a different approver's approval
    decides it. The same person can never give both approvals.
    """
    withdrawal, review = _lock(withdrawal_id, acting_user, "approve")
    _check_claim(withdrawal, review, acting_user)
    _check_limit(acting_user, [withdrawal])
    note = note.strip()
    if _path(withdrawal) != RiskPath.MANUAL:
        _approve(withdrawal, review, acting_user, note)
        return Decision(withdrawal, "approved")
    pending = _pending_approval(review)
    if pending is not None:
        if pending.requested_by_id == acting_user.pk:
            raise PermissionDenied(
                "You gave the first approval: a second, different approver must confirm it."
            )
        req = do_decide_approval(pending.pk, acting_user=acting_user, approve=True, note=note)
        withdrawal.refresh_from_db(fields=["status", "status_changed_at", "status_reason"])
        return Decision(withdrawal, "approved", req)
    req = do_request_approval(
        MANUAL_APPROVAL_ACTION,
        {
            "withdrawal_id": withdrawal.pk,
            "reference": withdrawal.reference,
            "amount": withdrawal.amount,
            "currency": withdrawal.currency_id,
        },
        acting_user=acting_user,
        reason=note or "First of two approvals from the withdrawal queue.",
        brand=withdrawal.brand_id,
        subject=withdrawal.as_kind(),
    )
    review.approval = req
    review.assignee, review.claimed_at = None, None  # the second approver takes it from here
    _save_review(review, acting_user, "first approval", ["approval", "assignee", "claimed_at"])
    record_event(
        "payments.withdrawal.first_approval",
        actor=acting_user,
        subject=withdrawal.as_kind(),
        summary=f"First approval of withdrawal {withdrawal.reference}; request #{req.pk} waits "
        "for a second approver",
        reason=note,
    )
    return Decision(withdrawal, "first", req)


def describe_manual_approval(payload: dict) -> str:
    money = format_money(payload["amount"], payload["currency"])
    return f"Approve high-risk withdrawal {payload['reference']} ({money})"


@register_action(
    MANUAL_APPROVAL_ACTION,
    label="High-risk withdrawal (second approval)",
    permission=APPROVE_PERMISSION,
    describe=describe_manual_approval,
)
def execute_manual_approval(payload: dict, *, request, acting_user) -> dict:
    """The second approval of a manual-path withdrawal, inside the deciding transaction."""
    withdrawal, review = _lock(payload["withdrawal_id"], acting_user, "approve")
    _check_limit(acting_user, [withdrawal])
    _approve(withdrawal, review, acting_user, f"Second approval (request #{request.pk})")
    return {"withdrawal_id": withdrawal.pk, "status": S.APPROVED}


def _close_pending_approval(review: WithdrawalReview, user, note: str) -> None:
    """A withdrawal rejected while its first approval waits: the request goes too."""
    pending = _pending_approval(review)
    if pending is None:
        return
    text = note or "The withdrawal was rejected."
    if pending.requested_by_id == user.pk:
        do_cancel_approval(pending.pk, acting_user=user, note=text)
    else:
        do_decide_approval(pending.pk, acting_user=user, approve=False, note=text)


def _check_reason(reason_code: str, what: str) -> None:
    if reason_code not in WithdrawalReason.values:
        raise PaymentsError(f"Pick a reason code for the {what}.")


@transaction.atomic
def do_hold_queued_withdrawal(
    withdrawal_id: int,
    *,
    acting_user,
    reason_code: str,
    note: str = "",
    follow_up_at: datetime,
) -> WithdrawalReview:
    """Hold a waiting withdrawal until a follow-up time, with a reason (and claim it).

    A requested withdrawal moves to in review; one already in review gets the new reason and
    follow-up time. It stays in the queue; the follow-up filter brings it back when due.
    """
    _check_reason(reason_code, "hold")
    now = timezone.now()
    if follow_up_at is None or follow_up_at <= now:
        raise PaymentsError("Pick a follow-up time in the future.")
    if follow_up_at > now + HOLD_MAX:
        raise PaymentsError(f"Follow up within {HOLD_MAX.days} days at most.")
    withdrawal, review = _lock(withdrawal_id, acting_user, "review")
    _check_claim(withdrawal, review, acting_user)
    note = note.strip()
    if withdrawal.status == S.REQUESTED:
        payment_services.do_hold_withdrawal(
            withdrawal.pk, acting_user=acting_user, reason_code=reason_code, note=note
        )
    else:
        record_event(
            "payments.withdrawal.held",
            actor=acting_user,
            subject=withdrawal.as_kind(),
            summary=f"Hold on withdrawal {withdrawal.reference} renewed ({reason_code})",
            reason=note,
            before={"hold_reason": review.hold_reason, "follow_up_at": review.follow_up_at},
            after={"hold_reason": reason_code, "follow_up_at": follow_up_at},
        )
    review.hold_reason, review.hold_note, review.follow_up_at = (
        reason_code,
        note[:300],
        follow_up_at,
    )
    fields = ["hold_reason", "hold_note", "follow_up_at"]
    if review.assignee_id is None:
        review.assignee, review.claimed_at = acting_user, now
        fields += ["assignee", "claimed_at"]
    _save_review(review, acting_user, f"held: {reason_code}", fields)
    return review


@transaction.atomic
def do_reject_queued_withdrawal(
    withdrawal_id: int, *, acting_user, reason_code: str, note: str = ""
) -> Payment:
    """Reject a waiting withdrawal with a reason code: the amount goes back to the player's
    cash (through the payments service), and a waiting first approval is closed."""
    _check_reason(reason_code, "rejection")
    withdrawal, review = _lock(withdrawal_id, acting_user, "approve")
    _check_claim(withdrawal, review, acting_user)
    note = note.strip()
    _close_pending_approval(review, acting_user, note)
    payment_services.do_reject_withdrawal(
        withdrawal.pk, acting_user=acting_user, reason_code=reason_code, note=note
    )
    fields = _clear_hold(review)
    if fields:
        _save_review(review, acting_user, f"rejected: {reason_code}", fields)
    withdrawal.refresh_from_db(fields=["status", "status_changed_at", "status_reason"])
    return withdrawal


@transaction.atomic
def do_bulk_approve_withdrawals(
    withdrawal_ids: Iterable[int], *, acting_user, note: str = ""
) -> list[Payment]:
    """Approve the selected withdrawals together, all or nothing.

    Refused whole if any is no longer waiting, is claimed by someone else, needs two approvers
    (manual path: approve those one by one), or if the total per currency is above the
    approver's limit. Payments are locked in id order.
    """
    ids = sorted({int(i) for i in withdrawal_ids})
    if not ids:
        raise PaymentsError("Tick the withdrawals to approve.")
    if len(ids) > BULK_MAX:
        raise PaymentsError(f"Approve at most {BULK_MAX} at once.")
    locked = [_lock(pk, acting_user, "approve") for pk in ids]
    paths = dict(RiskAssessment.objects.filter(pk__in=ids).values_list("pk", "path"))
    problems = []
    for withdrawal, review in locked:
        if review.assignee_id and review.assignee_id != acting_user.pk:
            problems.append(
                f"{withdrawal.reference} is claimed by {review.assignee.get_username()}"
            )
        elif paths.get(withdrawal.pk) == RiskPath.MANUAL:
            problems.append(f"{withdrawal.reference} needs two approvers")
    if problems:
        raise PaymentsError("Nothing approved: " + "; ".join(problems) + ".")
    _check_limit(acting_user, [w for w, _ in locked])
    note = note.strip()
    for withdrawal, review in locked:
        _approve(withdrawal, review, acting_user, note or "Bulk approval from the queue")
    record_event(
        "payments.withdrawal.bulk_approved",
        actor=acting_user,
        summary=f"Bulk-approved {len(locked)} withdrawal{'s' if len(locked) != 1 else ''}",
        reason=note,
        after={"references": [w.reference for w, _ in locked]},
    )
    return [w for w, _ in locked]
