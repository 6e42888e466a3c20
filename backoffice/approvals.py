"""The four-eyes registry: apps plug actions into the generic approval request.

An app registers an action once, at import time of its `approvals.py`:

    @register_action(
        "payments.manual_adjustment",
        label="Manual adjustment",
        permission="payments.approve_adjustment",
    )
    def execute_adjustment(payload: dict, *, request: ApprovalRequest, acting_user) -> dict:
        ...  # runs inside the approving transaction; returns a JSON-able result

`backoffice.services.do_request_approval` creates a request, `do_decide_approval` approves (and
executes) or rejects it. Every app's `approvals.py` is imported when Django starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .exceptions import UnknownApprovalAction


@dataclass(frozen=True)
class ApprovalAction:
    key: str
    label: str
    permission: str  # model permission an approver must hold, e.g. "payments.approve_adjustment"
    execute: Callable[..., dict | None]
    describe: Callable[[dict], str] | None = None


_REGISTRY: dict[str, ApprovalAction] = {}


def register_action(
    key: str, *, label: str, permission: str, describe: Callable[[dict], str] | None = None
):
    def wrap(func):
        _REGISTRY[key] = ApprovalAction(key, label, permission, func, describe)
        return func

    return wrap


def get_action(key: str) -> ApprovalAction:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownApprovalAction(f"No approval action is registered as {key!r}.")


def all_actions() -> list[ApprovalAction]:
    return sorted(_REGISTRY.values(), key=lambda a: a.label)
