"""Withdrawal decisions: risk policies per brand and currency, the assessment stored with each
withdrawal, the queue's working state, auto-pay cap usage and payout attempts.

A withdrawal is assessed once, when it is requested (`payments.services.risk`). The assessment
picks a path: auto-pay (sent without a person, within the brand's daily cap for the currency),
review (one approver) or manual (two distinct approvers through a four-eyes request). The queue
(`payments.services.queue`) works the review and manual ones.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone

from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class RiskPath(models.TextChoices):
    AUTO_PAY = "auto_pay", "Auto-pay"
    REVIEW = "review", "Review"
    MANUAL = "manual", "Manual (two approvers)"


# Order of strictness: a rule can only move a withdrawal to a stricter path, never back.
PATH_RANK = {RiskPath.AUTO_PAY: 0, RiskPath.REVIEW: 1, RiskPath.MANUAL: 2}


class RiskPolicy(models.Model):
    """How withdrawals of one brand in one currency are decided.

    A score at or above `manual_score` goes to manual review, at or above `review_score` to
    review; below it the withdrawal auto-pays if it is no larger than `auto_pay_max_amount` and
    the day's auto-paid total stays within `daily_auto_pay_cap`. A brand and currency without a
    policy auto-pays nothing (the safe default). Amounts are minor units of `currency`.
    Changed only by holders of `payments.manage_riskpolicy` (Payments leads), audited.
    """

    brand = models.ForeignKey("backoffice.Brand", on_delete=models.PROTECT, related_name="+")
    currency = models.ForeignKey("payments.Currency", on_delete=models.PROTECT, related_name="+")
    review_score = models.PositiveSmallIntegerField(
        default=30, help_text="Score (0–100) from which a withdrawal needs one approver."
    )
    manual_score = models.PositiveSmallIntegerField(
        default=70, help_text="Score (0–100) from which a withdrawal needs two approvers."
    )
    auto_pay_max_amount = models.BigIntegerField(
        default=0, help_text="Largest withdrawal that may auto-pay (minor units; 0: none)."
    )
    daily_auto_pay_cap = models.BigIntegerField(
        default=0, help_text="Total auto-paid per UTC day (minor units; 0: no auto-pay)."
    )
    approver_limit = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The most one approver may approve at once (one withdrawal or one bulk "
        "approval) unless their personal limit says otherwise (minor units; blank: no limit).",
    )
    kyc0_limit = models.BigIntegerField(
        default=0, help_text="Largest withdrawal without KYC before the KYC factor counts."
    )
    kyc1_limit = models.BigIntegerField(
        default=0, help_text="Largest withdrawal at KYC level 1 before the KYC factor counts."
    )
    kyc2_limit = models.BigIntegerField(
        default=0, help_text="Largest withdrawal at KYC level 2 before the KYC factor counts."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["brand__name", "currency"]
        verbose_name = "withdrawal risk policy"
        verbose_name_plural = "withdrawal risk policies"
        permissions = [
            (
                "manage_riskpolicy",
                "Payments lead: set risk thresholds, auto-pay caps and approval limits",
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["brand", "currency"], name="uniq_risk_policy"),
            models.CheckConstraint(
                condition=models.Q(review_score__lte=models.F("manual_score"))
                & models.Q(manual_score__lte=100),
                name="risk_policy_scores_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(auto_pay_max_amount__gte=0)
                & models.Q(daily_auto_pay_cap__gte=0)
                & models.Q(approver_limit__gte=0)
                & models.Q(kyc0_limit__gte=0)
                & models.Q(kyc1_limit__gte=0)
                & models.Q(kyc2_limit__gte=0),
                name="risk_policy_amounts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} {self.currency_id}"

    def kyc_limit(self, level: int) -> int | None:
        """The largest withdrawal a player at `level` makes before KYC counts (None: any)."""
        return {0: self.kyc0_limit, 1: self.kyc1_limit, 2: self.kyc2_limit}.get(level)

    def snapshot(self) -> dict:
        """The thresholds an assessment used, stored with it."""
        return {
            "policy_id": self.pk,
            "review_score": self.review_score,
            "manual_score": self.manual_score,
            "auto_pay_max_amount": self.auto_pay_max_amount,
            "daily_auto_pay_cap": self.daily_auto_pay_cap,
        }


class ApproverLimit(models.Model):
    """A member of staff's own approval limit in one currency, overriding the policies'
    `approver_limit`: the most they may approve in one withdrawal or one bulk approval."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="approver_limits"
    )
    currency = models.ForeignKey("payments.Currency", on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(help_text="Minor units.")
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = None

    history = audit_history()

    class Meta:
        ordering = ["user__username", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["user", "currency"], name="uniq_approver_limit"),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="approver_limit_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.currency_id} {self.amount}"


class RiskAssessment(models.Model):
    """The risk assessment of one withdrawal, made when it was requested; never changed.

    `factors` lists what produced the score, each as {"code", "label", "value", "weight",
    "points", "explanation"}: `weight` is the most the factor can add, `points` what it added.
    `reasons` are the reason codes behind the path (GIN-indexed for the queue's filter).
    `auto_paid` says whether the auto-pay cap was drawn on for it.
    """

    withdrawal = models.OneToOneField(
        "payments.Payment",
        primary_key=True,
        on_delete=models.PROTECT,
        related_name="risk_assessment",
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    score = models.PositiveSmallIntegerField()
    path = models.CharField(max_length=10, choices=RiskPath.choices)
    reasons = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    factors = models.JSONField(default=list)
    policy = models.JSONField(default=dict, help_text="The thresholds the assessment used.")
    auto_paid = models.BooleanField(default=False)
    engine_version = models.PositiveSmallIntegerField(default=1)
    assessed_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["-assessed_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__lte=100), name="risk_score_at_most_100"
            ),
        ]
        indexes = [
            models.Index(fields=["path"], name="risk_path_idx"),
            GinIndex(fields=["reasons"], name="risk_reasons_gin"),
        ]

    def __str__(self) -> str:
        return f"Risk of withdrawal #{self.withdrawal_id}: {self.score} ({self.path})"

    @property
    def top_factors(self) -> list[dict]:
        """The factors that added points, largest first (what the queue row shows)."""
        scored = [f for f in self.factors if f.get("points")]
        return sorted(scored, key=lambda f: -f["points"])


class WithdrawalReview(models.Model):
    """The queue's working state of one withdrawal: who claimed it, whether it is on hold
    until a follow-up time, and the four-eyes request of a manual approval.

    One row per withdrawal, created with its assessment. A claim locks the row and takes it
    only while nobody holds it, so of two people claiming at once exactly one wins.
    """

    withdrawal = models.OneToOneField(
        "payments.Payment", primary_key=True, on_delete=models.PROTECT, related_name="review"
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    hold_reason = models.CharField(max_length=40, blank=True)
    hold_note = models.CharField(max_length=300, blank=True)
    follow_up_at = models.DateTimeField(null=True, blank=True)
    approval = models.ForeignKey(
        "backoffice.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The four-eyes request of a manual approval, once the first approver signed.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["withdrawal"]
        indexes = [
            models.Index(
                fields=["assignee"],
                condition=models.Q(assignee__isnull=False),
                name="review_assignee_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Review of withdrawal #{self.withdrawal_id}"

    @property
    def is_held(self) -> bool:
        return bool(self.hold_reason)


class AutoPayUsage(models.Model):
    """How much one brand auto-paid in one currency on one UTC day.

    It counts what the system approved without a person; a payout that later fails or is
    cancelled does not give its amount back (the cap bounds unattended approvals, not money
    out).

    Drawn on with one conditional UPDATE (`used + amount <= cap`), so concurrent requests can
    never take the total past the cap: the row lock serialises them and each re-checks the
    condition against the committed total.
    """

    brand = models.ForeignKey("backoffice.Brand", on_delete=models.PROTECT, related_name="+")
    currency = models.ForeignKey("payments.Currency", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    used_amount = models.BigIntegerField(default=0)
    used_count = models.PositiveIntegerField(default=0)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    # Written only by conditional UPDATEs (which bypass history); the auto-paid withdrawals'
    # assessments and transitions are the record of what drew on the cap.
    history = audit_history()

    class Meta:
        ordering = ["-day"]
        verbose_name = "auto-pay cap usage"
        constraints = [
            models.UniqueConstraint(fields=["brand", "currency", "day"], name="uniq_autopay_day"),
            models.CheckConstraint(
                condition=models.Q(used_amount__gte=0), name="autopay_used_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand_id} {self.currency_id} {self.day}: {self.used_amount}"


class PayoutAttempt(models.Model):
    """One payout request sent (or about to be sent) to the PSP for a withdrawal.

    `attempt_key` is unique and is what the PSP receives as the idempotency key: a key is
    inserted in the same transaction that moves the withdrawal to sent_to_psp, before the
    call, so a second sender for the same attempt fails on the constraint and sends nothing.
    """

    class Outcome(models.TextChoices):
        PENDING = "pending", "Sent, no answer yet"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        UNKNOWN = "unknown", "Outcome unknown"

    withdrawal = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="payout_attempts"
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    number = models.PositiveSmallIntegerField()
    attempt_key = models.CharField(max_length=60, unique=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["withdrawal", "number"]
        constraints = [
            models.UniqueConstraint(fields=["withdrawal", "number"], name="uniq_payout_attempt"),
        ]

    def __str__(self) -> str:
        return self.attempt_key
