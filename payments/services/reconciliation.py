"""Reconciliation writes staff make: uploading a settlement report, running it again, and
working its exceptions (resolve with a note, or propose a correcting ledger adjustment that a
second person approves).

The run itself is `payments.reconciliation.runner.run_report`, started after commit by the
Celery task, or in-process by `manage.py reconcile`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from typing import BinaryIO

from django.core.exceptions import PermissionDenied
from django.core.files.base import File
from django.db import DatabaseError, transaction
from django.utils import timezone

from backoffice.approvals import register_action
from backoffice.audit import record_event
from backoffice.models import ApprovalRequest
from backoffice.money import format_money
from backoffice.scoping import check_in_scope
from backoffice.services import do_request_approval
from players.models import Player

from ..choices import AdjustmentReason, BalanceKind, Direction
from ..exceptions import AmountOutOfRange, PaymentsError
from ..models import Psp, ReconciliationException, SettlementReport
from ..reconciliation.formats import format_for
from . import corrections

ADJUSTMENT_ACTION = "payments.reconciliation_adjustment"
UPLOAD_PERMISSION = "payments.add_settlementreport"
WORK_PERMISSION = "payments.change_reconciliationexception"
MAX_REPORT_BYTES = 500 * 1024 * 1024

R = SettlementReport.Status
X = ReconciliationException.Status


def _require(user, *perms: str) -> None:
    if user is None or not user.is_active or not all(user.has_perm(p) for p in perms):
        raise PermissionDenied("Your role does not allow this.")


def _hash(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def _enqueue(report_id: int) -> None:
    from ..reconciliation.tasks import enqueue_report

    transaction.on_commit(lambda: enqueue_report(report_id))


@transaction.atomic
def do_upload_settlement_report(
    psp: Psp,
    *,
    stream: BinaryIO,
    name: str,
    acting_user,
    period_start: date | None = None,
    period_end: date | None = None,
    enqueue: bool = True,
) -> tuple[SettlementReport, bool]:
    """Store a PSP's settlement report and queue its run. Returns (report, created).

    The same file for the same PSP is the same report: uploading it again returns the existing
    one (re-run it there). `acting_user` None is the system (`manage.py reconcile`), which runs
    the report itself (`enqueue=False`). The period, when not given, is the days of the
    report's lines.
    """
    if acting_user is not None:
        _require(acting_user, UPLOAD_PERMISSION)
        check_in_scope(acting_user, psp, "view")
    format_for(psp.adapter)  # refuse PSPs whose reports we cannot read, before storing
    if period_start and period_end and period_start > period_end:
        raise PaymentsError("The period ends before it starts.")
    sha256, size = _hash(stream)
    if not size:
        raise PaymentsError("The file is empty.")
    if size > MAX_REPORT_BYTES:
        raise PaymentsError(f"The file is larger than {MAX_REPORT_BYTES // (1 << 20)} MB.")
    existing = SettlementReport.objects.filter(psp=psp, sha256=sha256).first()
    if existing is not None:
        return existing, False
    report = SettlementReport(
        psp=psp,
        brand_id=psp.brand_id,
        original_name=(name or "report.csv")[:200],
        sha256=sha256,
        size=size,
        period_start=period_start,
        period_end=period_end,
        uploaded_by=acting_user,
    )
    report.file.save(f"{sha256[:16]}.csv", File(stream), save=False)
    report._history_user = acting_user
    report._change_reason = "uploaded"
    try:
        with transaction.atomic():
            report.save()
    except DatabaseError:
        report.file.delete(save=False)
        raise
    record_event(
        "payments.reconciliation.uploaded",
        actor=acting_user,
        actor_label=None if acting_user else "system",
        subject=report,
        summary=f"Settlement report {report.original_name} uploaded for {psp}",
        after={"sha256": sha256, "size": size},
    )
    if enqueue:
        _enqueue(report.pk)
    return report, True


@transaction.atomic
def do_rerun_settlement_report(report_id: int, *, acting_user) -> SettlementReport:
    """Run a report again: after a crash, after a failure, or to see what changed on our side
    since. A re-run adds no exception that is already there. Refused while a run holds it."""
    if acting_user is not None:
        _require(acting_user, UPLOAD_PERMISSION)
    try:
        report = SettlementReport.objects.select_for_update(nowait=True).get(pk=report_id)
    except DatabaseError:
        raise PaymentsError("The report is being run right now: wait for it to finish.")
    if acting_user is not None:
        check_in_scope(acting_user, report, "view")
    before = report.status
    report.status = R.QUEUED
    report._history_user = acting_user
    report._change_reason = "re-run requested"
    report.save(update_fields=["status"])
    record_event(
        "payments.reconciliation.rerun",
        actor=acting_user,
        actor_label=None if acting_user else "system",
        subject=report,
        summary=f"Re-run of settlement report #{report.pk} requested",
        before={"status": before},
        after={"status": R.QUEUED},
    )
    _enqueue(report.pk)
    return report


# -- exceptions -----------------------------------------------------------------------------


def _lock_exception(exception_id: int, user) -> ReconciliationException:
    exc = (
        ReconciliationException.objects.select_for_update(of=("self",))
        .select_related("approval", "payment")
        .get(pk=exception_id)
    )
    check_in_scope(user, exc, "change")
    # A proposed adjustment that the second person refused puts the exception back to work.
    if (
        exc.status == X.ADJUSTMENT_PROPOSED
        and exc.approval is not None
        and exc.approval.status
        in (
            ApprovalRequest.Status.REJECTED,
            ApprovalRequest.Status.CANCELLED,
        )
    ):
        exc.status = X.OPEN
    if exc.status != X.OPEN:
        raise PaymentsError(
            f"This exception is {exc.get_status_display().lower()}: there is nothing left to do."
        )
    return exc


@transaction.atomic
def do_resolve_reconciliation_exception(
    exception_id: int, *, acting_user, note: str
) -> ReconciliationException:
    """Close an exception with a note saying why nothing (more) needs to change."""
    _require(acting_user, WORK_PERMISSION)
    note = (note or "").strip()
    if not note:
        raise PaymentsError("Explain the resolution in the note.")
    exc = _lock_exception(exception_id, acting_user)
    exc.status = X.RESOLVED
    exc.resolution_note = note
    exc.resolved_by = acting_user
    exc.resolved_at = timezone.now()
    exc._history_user = acting_user
    exc._change_reason = note[:100]
    exc.save(update_fields=["status", "resolution_note", "resolved_by", "resolved_at"])
    record_event(
        "payments.reconciliation.resolved",
        actor=acting_user,
        subject=exc,
        summary=f"Resolved {exc.get_kind_display().lower()} {exc.match_key}",
        reason=note,
    )
    return exc


def describe_reconciliation_adjustment(payload: dict) -> str:
    verb = "Credit" if payload["direction"] == Direction.CREDIT else "Debit"
    money = format_money(payload["amount"], payload["currency"])
    return (
        f"{verb} {money} {payload['balance']} for player #{payload['player_id']} to correct "
        f"reconciliation exception #{payload['exception_id']}"
    )


@transaction.atomic
def do_propose_reconciliation_adjustment(
    exception_id: int,
    *,
    acting_user,
    player: Player,
    balance: str,
    direction: str,
    amount: int,
    reason_code: str,
    note: str,
) -> ApprovalRequest:
    """Propose the ledger adjustment that corrects an exception, for a second person to
    approve (always four eyes, whatever the amount). Approving posts it through the manual
    adjustment service and marks the exception adjusted."""
    _require(acting_user, WORK_PERMISSION, "payments.request_adjustment")
    exc = _lock_exception(exception_id, acting_user)
    check_in_scope(acting_user, player, "view")
    if player.brand_id != exc.brand_id:
        raise PaymentsError("The player belongs to another brand than the PSP.")
    if balance not in BalanceKind.values or direction not in Direction.values:
        raise PaymentsError("Pick a balance and a direction.")
    if reason_code not in AdjustmentReason.values:
        raise PaymentsError("Pick a reason code.")
    note = (note or "").strip()
    if not note:
        raise PaymentsError("Explain the adjustment in the note.")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise AmountOutOfRange("The amount must be positive.")
    currency = exc.our_currency or exc.psp_currency
    if not currency:
        raise PaymentsError("The exception has no currency to adjust in.")
    payload = {
        "exception_id": exc.pk,
        "player_id": player.pk,
        "currency": currency,
        "balance": balance,
        "direction": direction,
        "amount": amount,
        "reason_code": reason_code,
        "note": note,
        "idempotency_key": f"reconciliation:{exc.pk}:{uuid.uuid4().hex}",
        "requested_by": acting_user.pk,
    }
    req = do_request_approval(
        ADJUSTMENT_ACTION,
        payload,
        acting_user=acting_user,
        reason=note,
        summary=describe_reconciliation_adjustment(payload),
        brand=exc.brand_id,
        subject=exc,
    )
    exc.status = X.ADJUSTMENT_PROPOSED
    exc.approval = req
    exc._history_user = acting_user
    exc._change_reason = f"adjustment proposed (request #{req.pk})"
    exc.save(update_fields=["status", "approval"])
    return req


@register_action(
    ADJUSTMENT_ACTION,
    label="Reconciliation correction",
    permission="payments.approve_adjustment",
    describe=describe_reconciliation_adjustment,
)
def execute_reconciliation_adjustment(payload: dict, *, request, acting_user) -> dict:
    """Post the proposed correction (inside the approving transaction) and close the
    exception as adjusted."""
    exc = ReconciliationException.objects.select_for_update().get(pk=payload["exception_id"])
    if exc.status != X.ADJUSTMENT_PROPOSED or exc.approval_id != request.pk:
        raise PaymentsError(
            f"Exception #{exc.pk} no longer waits for this adjustment "
            f"({exc.get_status_display().lower()})."
        )
    txn = corrections.execute_adjustment(payload, acting_user=acting_user, approval=request)
    exc.status = X.ADJUSTED
    exc.adjustment = txn
    exc.resolved_by = acting_user
    exc.resolved_at = timezone.now()
    exc.resolution_note = payload["note"]
    exc._history_user = acting_user
    exc._change_reason = f"adjusted by ledger transaction #{txn.pk}"
    exc.save(update_fields=["status", "adjustment", "resolved_by", "resolved_at",
                            "resolution_note"])  # fmt: skip
    return {"transaction_id": txn.pk, "exception_id": exc.pk}
