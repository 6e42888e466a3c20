"""Reads of four-eyes requests, always scoped to the user asking."""

from __future__ import annotations

from django.db.models import QuerySet

from .approvals import all_actions, get_action
from .exceptions import UnknownApprovalAction
from .models import ApprovalRequest
from .services import can_decide

DECIDE_PERMISSION = "backoffice.decide_approvalrequest"


def decidable_actions(user) -> list[str]:
    """Keys of the registered actions `user` holds the approver permission for."""
    if not user.has_perm(DECIDE_PERMISSION):
        return []
    return [a.key for a in all_actions() if user.has_perm(a.permission)]


def waiting_for(user) -> QuerySet[ApprovalRequest]:
    """Pending requests `user` could decide now: in their brands, of an action their role may
    approve, and not their own (the same rule as `services.can_decide`, as one query)."""
    keys = decidable_actions(user)
    qs = ApprovalRequest.objects.restrict(user, "view").filter(
        status=ApprovalRequest.Status.PENDING
    )
    if not keys:
        return qs.none()
    return qs.filter(action__in=keys).exclude(requested_by=user)


def may_decide(user, req: ApprovalRequest) -> bool:
    """`can_decide` for display: pending only, and False for an action no longer registered."""
    if req.status != ApprovalRequest.Status.PENDING:
        return False
    try:
        return can_decide(user, req)
    except UnknownApprovalAction:
        return False


def action_label(key: str) -> str:
    try:
        return get_action(key).label
    except UnknownApprovalAction:
        return f"{key} (no longer registered)"
