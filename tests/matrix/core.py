"""Permission-matrix cases for the shell (home, search, health), saved filters, the audit trail
and the four-eyes pages.

The approval request of the world is in brand A, made by a member of staff who is none of the
matrix visitors, for a no-op action any decider may approve. Saved-filter deletion and request
cancellation only work on the visitor's own objects, so `build` gives every active visitor one
of each and the kwargs pick the visitor's (`world.visitor`, set by the runner).
"""

from __future__ import annotations

from types import SimpleNamespace

from backoffice.approvals import register_action
from tests.matrix import ALL_ROLES, Case

AUDIT_READERS = frozenset({"Admin", "Auditor", "Compliance"})
AUDIT_EXPORTERS = frozenset({"Auditor", "Compliance"})
DECIDERS = frozenset({"Admin", "Compliance", "Payments", "Risk", "Bonus manager"})
MATRIX_ACTION = "tests.matrix.noop"


@register_action(
    MATRIX_ACTION, label="Matrix: no-op", permission="backoffice.decide_approvalrequest"
)
def _noop(payload: dict, *, request, acting_user) -> dict:
    """Test-only: approving it changes nothing but the request."""
    return {"ran": True}


def build(world: SimpleNamespace) -> None:
    from guardian.shortcuts import assign_perm

    from backoffice.audit import record_event
    from backoffice.services_filters import do_save_filter
    from tests.factories import StaffFactory

    requester = StaffFactory(username="mx-requester")
    assign_perm("backoffice.access_brand", requester, world.brand_a)
    world.audit_event = record_event(
        "matrix.checked", actor=requester, brand=world.brand_a, summary="Permission matrix"
    )
    world.approval = _ask(requester, world.brand_a)
    world.own_approval, world.own_filter = {}, {}
    for brand, users in ((world.brand_a, world.users), (world.brand_b, world.brand_b_users)):
        for user in users.values():
            world.own_approval[user.pk] = _ask(user, brand)
            world.own_filter[user.pk] = do_save_filter(
                acting_user=user, list_name="backoffice:audit_list", name="mx", query="action=x"
            )
    # Anonymous and disabled visitors never reach the lookup (they are sent to log in).
    world.any_filter = world.own_filter[world.users["Support"].pk]


def _ask(user, brand):
    from backoffice.services import do_request_approval

    return do_request_approval(
        MATRIX_ACTION,
        {"note": "matrix"},
        acting_user=user,
        reason="Permission matrix",
        summary="Matrix no-op",
        brand=brand,
    )


def _visitor_pk(world):
    return getattr(world.visitor, "pk", None)


def _approval(world):
    return {"pk": world.approval.pk}


def _own_approval(world):
    return {"pk": world.own_approval.get(_visitor_pk(world), world.approval).pk}


def _own_filter(world):
    return {"pk": world.own_filter.get(_visitor_pk(world), world.any_filter).pk}


CASES = [
    Case("home", allowed=ALL_ROLES),
    Case("search", allowed=ALL_ROLES, query="?q=alpha"),
    Case("health", allowed=ALL_ROLES, public=True),
    # Saved filters: anyone signed in, each on their own.
    Case(
        "backoffice:savedfilter_create",
        allowed=ALL_ROLES,
        get=False,
        post=True,
        post_data={
            "list_name": "backoffice:audit_list",
            "name": "matrix new",
            "query": "action=matrix.",
            "next": "/bo/audit/",
        },
    ),
    Case(
        "backoffice:savedfilter_delete",
        allowed=ALL_ROLES,
        kwargs=_own_filter,
        get=False,
        post=True,
        post_data={"next": "/"},
    ),
    # Audit trail.
    Case("backoffice:audit_list", allowed=AUDIT_READERS, query="?action=matrix.&brand="),
    Case("backoffice:audit_list", allowed=AUDIT_EXPORTERS, query="?action=matrix.&export=csv"),
    Case(
        "backoffice:audit_detail",
        allowed=AUDIT_READERS,
        kwargs=lambda w: {"pk": w.audit_event.pk},
        scoped=True,
    ),
    # Four eyes: every role reads the queue; deciders decide; requesters cancel their own.
    Case("backoffice:approval_list", allowed=ALL_ROLES),
    Case("backoffice:approval_list", allowed=ALL_ROLES, query="?waiting=1&status="),
    Case("backoffice:approval_detail", allowed=ALL_ROLES, kwargs=_approval, scoped=True),
    Case(
        "backoffice:approval_approve",
        allowed=DECIDERS,
        kwargs=_approval,
        get=False,
        post=True,
        post_data={"note": "Permission matrix"},
        scoped=True,
    ),
    Case(
        "backoffice:approval_reject",
        allowed=DECIDERS,
        kwargs=_approval,
        get=False,
        post=True,
        post_data={"note": "Permission matrix"},
        scoped=True,
    ),
    Case(
        "backoffice:approval_cancel",
        allowed=ALL_ROLES,
        kwargs=_own_approval,
        get=False,
        post=True,
        post_data={"note": "Permission matrix"},
    ),
]
