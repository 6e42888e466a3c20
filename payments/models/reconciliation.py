"""Reconciliation: PSP settlement reports and the exceptions their runs find.

A `SettlementReport` is one uploaded file. Its run (`payments.reconciliation`) streams the file
into a staging table with COPY, classifies every line and every payment of the period with SQL,
and records the breaks as `ReconciliationException` rows, unique per PSP, class and reference,
so running the same report again (or a later report with the same break) adds nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class Discrepancy(models.TextChoices):
    """What a run says about a report line or one of our payments. `matched` is never an
    exception; every other class is."""

    MATCHED = "matched", "Matched"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
    CURRENCY_MISMATCH = "currency_mismatch", "Currency mismatch"
    STATUS_MISMATCH = "status_mismatch", "Status mismatch"
    MISSING_OURS = "missing_ours", "Missing on our side"
    MISSING_PSP = "missing_psp", "Missing in the report"
    DUPLICATE = "duplicate", "Duplicate in the report"


EXCEPTION_CLASSES = [c for c in Discrepancy.values if c != Discrepancy.MATCHED]


def _report_path(instance: SettlementReport, filename: str) -> str:
    stamp = timezone.now().strftime("%Y/%m/%d")
    return f"settlement/{stamp}/{instance.sha256[:16]}.csv"


class SettlementReport(models.Model):
    """One PSP settlement report file and the outcome of reconciling it.

    Unique per PSP and content hash: uploading the same file again finds this report (which
    can be re-run) instead of a copy. `counts` holds the number of lines and payments in each
    class; a rejected file has `errors` ([{"line", "reason"}], the first 500) and no exception.
    Progress of a running import is kept in the cache (`payments.reconciliation.progress`).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    psp = models.ForeignKey("payments.Psp", on_delete=models.PROTECT, related_name="reports")
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    file = models.FileField(upload_to=_report_path, max_length=200)
    original_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    line_count = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    failure = models.CharField(max_length=500, blank=True)
    runs = models.PositiveSmallIntegerField(default=0, help_text="How many times it was run.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["-id"]
        verbose_name = "settlement report"
        constraints = [
            models.UniqueConstraint(fields=["psp", "sha256"], name="uniq_settlement_report"),
        ]
        indexes = [models.Index(fields=["psp", "-id"], name="report_psp_idx")]

    def __str__(self) -> str:
        return f"Report #{self.pk} {self.original_name}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.REJECTED)

    @property
    def exception_count(self) -> int:
        return sum(v for k, v in (self.counts or {}).items() if k != Discrepancy.MATCHED)


class ReconciliationException(models.Model):
    """A break between a PSP's settlement report and our payments, to be worked.

    Unique per (PSP, class, `match_key`): the PSP reference, or our reference for a payment
    the PSP never gave us one for. Both sides are kept as they were when the break was found
    (the PSP's line, our payment's amount, currency and status); `report` found it first,
    `last_report` most recently. It is resolved with a note, corrected by a ledger adjustment
    through four eyes, or cleared when a later run finds the two sides matching.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ADJUSTMENT_PROPOSED = "awaiting_approval", "Adjustment awaiting approval"
        ADJUSTED = "adjusted", "Adjusted"
        RESOLVED = "resolved", "Resolved"
        CLEARED = "cleared", "Cleared by a later run"

    OPEN_STATUSES = (Status.OPEN, Status.ADJUSTMENT_PROPOSED)

    psp = models.ForeignKey("payments.Psp", on_delete=models.PROTECT, related_name="+")
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(
        max_length=20, choices=[(c, Discrepancy(c).label) for c in EXCEPTION_CLASSES]
    )
    match_key = models.CharField(max_length=100)
    report = models.ForeignKey(
        SettlementReport, on_delete=models.PROTECT, related_name="exceptions_found"
    )
    last_report = models.ForeignKey(
        SettlementReport, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    payment = models.ForeignKey(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reconciliation_exceptions",
    )
    psp_reference = models.CharField(max_length=100, blank=True)
    merchant_reference = models.CharField(max_length=100, blank=True)
    # The PSP's side, as the report said it.
    line_no = models.PositiveIntegerField(null=True, blank=True)
    line_count = models.PositiveIntegerField(
        default=0, help_text="Lines of the report with this reference (duplicates: 2 or more)."
    )
    psp_kind = models.CharField(max_length=10, blank=True)
    psp_amount = models.BigIntegerField(null=True, blank=True)
    psp_currency = models.CharField(max_length=8, blank=True)
    psp_status = models.CharField(max_length=16, blank=True)
    psp_occurred_at = models.DateTimeField(null=True, blank=True)
    # Our side, when the break was found.
    our_amount = models.BigIntegerField(null=True, blank=True)
    our_currency = models.CharField(max_length=8, blank=True)
    our_status = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    resolution_note = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    approval = models.ForeignKey(
        "backoffice.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    adjustment = models.ForeignKey(
        "payments.LedgerTransaction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["-id"]
        verbose_name = "reconciliation exception"
        constraints = [
            models.UniqueConstraint(
                fields=["psp", "kind", "match_key"], name="uniq_reconciliation_exception"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="recon_exc_status_idx"),
            models.Index(fields=["last_report"], name="recon_exc_last_report_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.match_key}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES
