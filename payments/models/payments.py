"""Deposits and withdrawals: one table, two state machines.

`Payment` is the table; `Deposit` and `Withdrawal` are proxy models over it, each with its own
transition map and permissions. One table lets the transactions list filter and page through
millions of deposits and withdrawals together with one index scan, where two tables would need
a sorted UNION. Every status change is a `PaymentTransition` row (append-only).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class PaymentKind(models.TextChoices):
    DEPOSIT = "deposit", "Deposit"
    WITHDRAWAL = "withdrawal", "Withdrawal"


class PaymentStatus(models.TextChoices):
    # deposits
    INITIATED = "initiated", "Initiated"
    AUTHORISED = "authorised", "Authorised"
    CAPTURED = "captured", "Captured"
    CREDITED = "credited", "Credited"
    EXPIRED = "expired", "Expired"
    REFUNDED = "refunded", "Refunded"
    REVERSED = "reversed", "Reversed"
    CHARGED_BACK = "charged_back", "Charged back"
    # withdrawals
    REQUESTED = "requested", "Requested"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    SENT_TO_PSP = "sent_to_psp", "Sent to PSP"
    PAID = "paid", "Paid"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    # both
    FAILED = "failed", "Failed"


S = PaymentStatus

DEPOSIT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.INITIATED: frozenset({S.AUTHORISED, S.CAPTURED, S.FAILED, S.EXPIRED}),
    S.AUTHORISED: frozenset({S.CAPTURED, S.FAILED, S.EXPIRED}),
    S.CAPTURED: frozenset({S.CREDITED}),
    S.CREDITED: frozenset({S.REFUNDED, S.REVERSED, S.CHARGED_BACK}),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
    S.REVERSED: frozenset(),
    S.CHARGED_BACK: frozenset(),
}

WITHDRAWAL_TRANSITIONS: dict[str, frozenset[str]] = {
    S.REQUESTED: frozenset({S.IN_REVIEW, S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SENT_TO_PSP, S.CANCELLED}),
    S.SENT_TO_PSP: frozenset({S.PAID, S.FAILED}),
    S.PAID: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}

TRANSITIONS = {
    PaymentKind.DEPOSIT: DEPOSIT_TRANSITIONS,
    PaymentKind.WITHDRAWAL: WITHDRAWAL_TRANSITIONS,
}

# Withdrawals still holding the player's money in the locked balance.
OPEN_WITHDRAWAL_STATUSES = (S.REQUESTED, S.IN_REVIEW, S.APPROVED, S.SENT_TO_PSP)


class PaymentQuerySet(ScopedQuerySet):
    pass


class _KindManager(models.Manager.from_queryset(PaymentQuerySet)):
    """The proxies' manager: only rows of the proxy's kind."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def get_queryset(self):
        return super().get_queryset().filter(kind=self.kind)


class Payment(models.Model):
    """A deposit or a withdrawal through a PSP, with its current status.

    Amounts are positive integers in minor units of `currency`. `reference` is ours (sent to
    the PSP); `psp_reference` is the PSP's id, unique per PSP. `instrument` is the masked card
    or account shown to staff; `instrument_fingerprint` identifies it without revealing it (a
    withdrawal to an instrument never used for a deposit is held for review).
    """

    Kind = PaymentKind
    Status = PaymentStatus

    kind = models.CharField(max_length=10, choices=PaymentKind.choices)
    # The composite indexes below cover these foreign keys.
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    player = models.ForeignKey(
        "players.Player", on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    psp = models.ForeignKey(
        "payments.Psp", on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    method = models.ForeignKey(
        "payments.PaymentMethod",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    method_kind = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    currency = models.ForeignKey(
        "payments.Currency", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    amount = models.BigIntegerField(help_text="Minor units, always positive.")
    reference = models.CharField(max_length=40, unique=True)
    psp_reference = models.CharField(max_length=100, null=True, blank=True)
    instrument = models.CharField(max_length=64, blank=True)
    instrument_fingerprint = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    status_reason = models.CharField(
        max_length=40, blank=True, help_text="Decline, review or rejection reason code."
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    psp_note = models.CharField(
        max_length=300, blank=True, help_text="Last thing the PSP told us, or failed to."
    )

    objects = PaymentQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payment_amount_positive"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="deposit", status__in=list(DEPOSIT_TRANSITIONS))
                    | models.Q(kind="withdrawal", status__in=list(WITHDRAWAL_TRANSITIONS))
                ),
                name="payment_status_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["psp", "psp_reference"],
                condition=models.Q(psp_reference__isnull=False),
                name="uniq_psp_reference",
            ),
        ]
        indexes = [
            models.Index(fields=["player", "-id"], name="payment_player_idx"),
            models.Index(fields=["brand", "-id"], name="payment_brand_idx"),
            models.Index(fields=["status", "-id"], name="payment_status_idx"),
            models.Index(fields=["psp", "-id"], name="payment_psp_idx"),
            models.Index(fields=["created_at"], name="payment_created_idx"),
            # The list filtered by kind, newest first (the default order): one index per kind,
            # keyed on id alone so PostgreSQL costs it as well correlated with the table and
            # prefers it to walking the primary key past every payment of the other kind. The
            # list's usual filters (brand scope, status, currency) ride along, so its bounded
            # count is an index-only scan instead of 10,001 matches fetched from the heap.
            models.Index(
                fields=["-id"],
                include=["brand", "status", "currency"],
                condition=models.Q(kind="deposit"),
                name="payment_deposit_list_idx",
            ),
            models.Index(
                fields=["-id"],
                include=["brand", "status", "currency"],
                condition=models.Q(kind="withdrawal"),
                name="payment_withdrawal_list_idx",
            ),
            models.Index(
                fields=["id"],
                condition=models.Q(
                    kind="withdrawal", status__in=[str(s) for s in OPEN_WITHDRAWAL_STATUSES]
                ),
                name="payment_open_withdrawal_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"

    @property
    def is_deposit(self) -> bool:
        return self.kind == PaymentKind.DEPOSIT

    @property
    def transitions_map(self) -> dict[str, frozenset[str]]:
        return TRANSITIONS[self.kind]

    def can_transition(self, to_status: str) -> bool:
        return to_status in self.transitions_map.get(self.status, frozenset())

    @property
    def is_final(self) -> bool:
        return not self.transitions_map.get(self.status)

    def as_kind(self) -> Payment:
        """The same row as a `Deposit` or `Withdrawal` instance (for labels and links)."""
        cls = Deposit if self.is_deposit else Withdrawal
        if type(self) is cls:
            return self
        obj = cls.__new__(cls)
        obj.__dict__ = self.__dict__.copy()
        return obj


class Deposit(Payment):
    """A deposit: initiated → authorised → captured → credited, or failed / expired; later
    refunded, reversed or charged back."""

    TRANSITIONS = DEPOSIT_TRANSITIONS

    objects = _KindManager(PaymentKind.DEPOSIT)

    class Meta:
        proxy = True
        permissions = [("refund_deposit", "Can refund, reverse or record a chargeback")]

    def save(self, *args, **kwargs):
        self.kind = PaymentKind.DEPOSIT
        super().save(*args, **kwargs)


class Withdrawal(Payment):
    """A withdrawal: requested → in review → approved → sent to PSP → paid, or rejected /
    cancelled / failed. Its amount sits in the player's locked balance while it is open."""

    TRANSITIONS = WITHDRAWAL_TRANSITIONS

    objects = _KindManager(PaymentKind.WITHDRAWAL)

    class Meta:
        proxy = True
        permissions = [
            ("approve_withdrawal", "Can approve or reject withdrawals"),
            ("review_withdrawal", "Can hold withdrawals for review"),
        ]

    def save(self, *args, **kwargs):
        self.kind = PaymentKind.WITHDRAWAL
        super().save(*args, **kwargs)


class PaymentTransition(models.Model):
    """One status change of a payment: from, to, when, who, why, and which PSP event.

    Append-only (a trigger rejects UPDATE and DELETE); it is the payment's status history.
    The first row of a payment has an empty `from_status`.
    """

    class Actor(models.TextChoices):
        STAFF = "staff", "Staff"
        PSP = "psp", "PSP"
        SYSTEM = "system", "System"
        PLAYER = "player", "Player"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    at = models.DateTimeField(default=timezone.now)
    actor_kind = models.CharField(max_length=10, choices=Actor.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason_code = models.CharField(max_length=40, blank=True)
    note = models.CharField(max_length=300, blank=True)
    psp_event = models.ForeignKey(
        "payments.PspInboxEvent",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transitions",
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.from_status or '∅'} → {self.to_status}"
