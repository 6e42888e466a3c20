"""Payment service providers, their payment methods, and what their webhooks sent us."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class Psp(models.Model):
    """A merchant account with a payment service provider, for one brand.

    `code` names the webhook URL (`/webhooks/psp/<code>/`); `adapter` names the module in
    `payments/psp/` that speaks this provider's wire format. `signing_keys` maps a key id to
    the shared secret the provider signs webhooks with (several during a rotation). Switching a
    PSP off stops new payments through it; callbacks about existing payments are still taken.
    """

    brand = models.ForeignKey("backoffice.Brand", on_delete=models.PROTECT, related_name="+")
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    adapter = models.CharField(max_length=40, help_text="Adapter key in payments.psp.registry.")
    is_enabled = models.BooleanField(default=True)
    status_reason = models.CharField(max_length=300, blank=True)
    signing_keys = models.JSONField(default=dict, blank=True)
    api_base_url = models.URLField(
        blank=True, help_text="Payout API; blank means the sandbox, which accepts at once."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    # Secrets stay out of the history tables.
    history = audit_history(excluded_fields=["signing_keys"])

    class Meta:
        ordering = ["name"]
        verbose_name = "PSP"
        verbose_name_plural = "PSPs"

    def __str__(self) -> str:
        return self.name


class PaymentMethod(models.Model):
    """A way to pay through one PSP, for one currency and (optionally) one country.

    Each row is switched on or off on its own, with a reason, by the Payments role.
    """

    class Kind(models.TextChoices):
        CARD = "card", "Card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        OPEN_BANKING = "open_banking", "Open banking"
        EWALLET = "ewallet", "E-wallet"
        CRYPTO = "crypto", "Crypto"

    psp = models.ForeignKey(Psp, on_delete=models.PROTECT, related_name="methods")
    brand = models.ForeignKey("backoffice.Brand", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    country = models.CharField(max_length=2, blank=True, help_text="Blank for every country.")
    currency = models.ForeignKey("payments.Currency", on_delete=models.PROTECT, related_name="+")
    supports_deposits = models.BooleanField(default=True)
    supports_withdrawals = models.BooleanField(default=True)
    min_amount = models.BigIntegerField(null=True, blank=True, help_text="Minor units.")
    max_amount = models.BigIntegerField(null=True, blank=True, help_text="Minor units.")
    is_enabled = models.BooleanField(default=True)
    status_reason = models.CharField(max_length=300, blank=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["psp__name", "kind", "country", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["psp", "kind", "country", "currency"], name="uniq_payment_method"
            )
        ]

    def __str__(self) -> str:
        where = self.country or "all countries"
        return f"{self.psp} {self.get_kind_display()} ({self.currency_id}, {where})"


class PspInboxEvent(models.Model):
    """A webhook delivery we verified and stored, before and after applying it.

    Unique on (PSP, the PSP's event id): a duplicate delivery finds the row already there and
    changes nothing. Rows are written once and only their processing columns change; they are
    their own history (no HistoricalRecords).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        IGNORED = "ignored", "Ignored"
        ERROR = "error", "Error"

    # No single-column indexes on psp (the unique (psp, event_id) and (psp, psp_reference)
    # indexes lead with it) or brand (three values or so: scoping filters, it never selects):
    # every delivery writes each index, and intake is the hottest insert we have.
    psp = models.ForeignKey(Psp, on_delete=models.PROTECT, related_name="inbox", db_index=False)
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=80)
    psp_reference = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=500, blank=True)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    class Meta:
        ordering = ["-id"]
        verbose_name = "PSP event"
        constraints = [
            models.UniqueConstraint(fields=["psp", "event_id"], name="uniq_psp_event"),
        ]
        indexes = [
            models.Index(fields=["psp", "psp_reference"], name="pspevent_reference_idx"),
            models.Index(
                fields=["id"],
                condition=models.Q(status__in=["pending", "error"]),
                name="pspevent_unprocessed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.psp_id}:{self.event_id} {self.event_type}"


class PspWebhookRejection(models.Model):
    """A webhook delivery we refused (bad or stale signature, unknown PSP, malformed body).

    Append-only: the database rejects UPDATE and DELETE.
    """

    class Reason(models.TextChoices):
        UNKNOWN_PSP = "unknown_psp", "Unknown PSP"
        MISSING_SIGNATURE = "missing_signature", "Missing signature"
        BAD_SIGNATURE = "bad_signature", "Bad signature"
        STALE = "stale", "Timestamp too old or in the future"
        MALFORMED = "malformed", "Malformed body"
        TOO_LARGE = "too_large", "Body too large"

    psp = models.ForeignKey(Psp, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    brand = models.ForeignKey(
        "backoffice.Brand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    psp_code = models.CharField(max_length=40)
    received_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict)
    body_excerpt = models.TextField(blank=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"
    brand_nullable = True

    class Meta:
        ordering = ["-id"]
        verbose_name = "rejected PSP webhook"

    def __str__(self) -> str:
        return f"{self.psp_code} {self.reason}"
