"""Writes of the foundation: approval requests (four eyes). Staff and role writes live in
`backoffice/staff_services.py`."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils import timezone

from .approvals import get_action
from .audit import describe, record_event
from .exceptions import ApprovalNotPending, SelfApprovalRefused
from .models import ApprovalRequest
from .scoping import brand_ids_for


def _may_touch_brand(user, brand_id: int | None) -> bool:
    ids = brand_ids_for(user)
    return ids is None or brand_id is None or brand_id in ids


@transaction.atomic
def do_request_approval(
    action: str,
    payload: dict,
    *,
    acting_user,
    reason: str,
    summary: str = "",
    brand=None,
    subject: models.Model | None = None,
) -> ApprovalRequest:
    """Propose `action` with `payload` for a second member of staff to decide.

    The reason is mandatory. The request is scoped to `brand` (or the subject's brand).
    """
    spec = get_action(action)
    if not reason.strip():
        raise ValueError("A reason is required.")
    brand_id = getattr(brand, "pk", brand)
    if brand_id is None and subject is not None:
        brand_id = getattr(subject, "brand_id", None)
    if not _may_touch_brand(acting_user, brand_id):
        raise PermissionDenied("That brand is outside your scope.")
    object_type, object_id, _ = describe(subject)
    req = ApprovalRequest(
        action=action,
        payload=payload,
        summary=(summary or (spec.describe(payload) if spec.describe else spec.label))[:300],
        reason=reason,
        brand_id=brand_id,
        object_type=object_type,
        object_id=object_id,
        requested_by=acting_user,
    )
    req._history_user = acting_user
    req._change_reason = reason
    req.save()
    record_event(
        "approval.requested",
        actor=acting_user,
        subject=req,
        brand=brand_id,
        summary=req.summary,
        reason=reason,
        after={"action": action, "payload": payload},
    )
    return req


def can_decide(user, req: ApprovalRequest) -> bool:
    """Whether `user` may approve or reject `req` (never their own)."""
    if req.requested_by_id == user.pk or not user.is_active:
        return False
    if not user.has_perm("backoffice.decide_approvalrequest"):
        return False
    if not user.has_perm(get_action(req.action).permission):
        return False
    return _may_touch_brand(user, req.brand_id)


@transaction.atomic
def do_decide_approval(
    request_id: int, *, acting_user, approve: bool, note: str = ""
) -> ApprovalRequest:
    """Approve (and execute, in this transaction) or reject a pending request.

    The row is locked, so two approvers clicking at once run the action exactly once: the second
    finds it no longer pending. A failing action rolls the whole decision back.
    """
    req = ApprovalRequest.objects.select_for_update().get(pk=request_id)
    if req.status != ApprovalRequest.Status.PENDING:
        raise ApprovalNotPending(
            f"Request #{req.pk} was already {req.get_status_display().lower()}."
        )
    if req.requested_by_id == acting_user.pk:
        raise SelfApprovalRefused("You cannot decide a request you made yourself.")
    if not can_decide(acting_user, req):
        raise PermissionDenied("You may not decide this request.")
    spec = get_action(req.action)
    if approve:
        result = spec.execute(req.payload, request=req, acting_user=acting_user)
        req.status = ApprovalRequest.Status.APPROVED
        req.result = result
    else:
        req.status = ApprovalRequest.Status.REJECTED
    req.decided_by = acting_user
    req.decided_at = timezone.now()
    req.decision_note = note
    req._history_user = acting_user
    req._change_reason = note
    req.save()
    record_event(
        "approval.approved" if approve else "approval.rejected",
        actor=acting_user,
        subject=req,
        summary=req.summary,
        reason=note,
        before={"status": "pending"},
        after={"status": req.status, "result": req.result},
    )
    return req


@transaction.atomic
def do_cancel_approval(request_id: int, *, acting_user, note: str = "") -> ApprovalRequest:
    """The requester withdraws a pending request."""
    req = ApprovalRequest.objects.select_for_update().get(pk=request_id)
    if req.status != ApprovalRequest.Status.PENDING:
        raise ApprovalNotPending(f"Request #{req.pk} is no longer pending.")
    if req.requested_by_id != acting_user.pk:
        raise PermissionDenied("Only the requester can cancel a request.")
    req.status = ApprovalRequest.Status.CANCELLED
    req.decided_by = acting_user
    req.decided_at = timezone.now()
    req.decision_note = note
    req._history_user = acting_user
    req._change_reason = note
    req.save()
    record_event("approval.cancelled", actor=acting_user, subject=req, reason=note)
    return req
