"""Reads about tickets, always scoped to the user who asks: queues, counts, assignees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from guardian.shortcuts import get_users_with_perms

from backoffice.models import Brand
from backoffice.scoping import BRAND_PERMISSION

from .models import OPEN_STATUSES, SLA_RUNNING_STATUSES, Macro, Ticket

WORK_PERMISSION = ("support", "change_ticket")


def tickets_for(user, action: str = "view") -> QuerySet[Ticket]:
    """The tickets `user` may `action`, in their brands."""
    return Ticket.objects.restrict(user, action)


def user_teams(user) -> list[str]:
    """The teams (role names) `user` belongs to; cached on the user for the request (and
    between requests in the session, see backoffice.permission_cache)."""
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = list(user.groups.values_list("name", flat=True))
        user._role_names = cached
    return cached


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    condition: Callable[..., Q]
    help: str


def _overdue(user) -> Q:
    return Q(status__in=SLA_RUNNING_STATUSES, sla_due_at__lt=timezone.now())


QUEUES: dict[str, Queue] = {
    q.key: q
    for q in [
        Queue(
            "unassigned", "Unassigned",
            lambda user: Q(assignee__isnull=True, status__in=OPEN_STATUSES),
            "Open tickets nobody has claimed yet.",
        ),
        Queue(
            "mine", "Mine",
            lambda user: Q(assignee=user, status__in=OPEN_STATUSES),
            "Open tickets assigned to you.",
        ),
        Queue(
            "team", "My team",
            lambda user: Q(team__in=user_teams(user), status__in=OPEN_STATUSES),
            "Open tickets routed to your roles.",
        ),
        Queue("overdue", "Overdue", _overdue, "Past their SLA and not waiting on the player."),
        Queue(
            "disputes", "Disputes",
            lambda user: Q(is_dispute=True, status__in=OPEN_STATUSES),
            "Open tickets flagged as disputes.",
        ),
        Queue("all", "All", lambda user: Q(), "Every ticket in your brands, closed ones too."),
    ]
}  # fmt: skip


# A queue badge counts at most this many tickets and reads "999+" beyond: a count over a busy
# brand's whole open backlog (tens of thousands at scale) cost more than the rest of the page.
QUEUE_COUNT_LIMIT = 999


def queue_counts(user, limit: int = QUEUE_COUNT_LIMIT) -> dict[str, int]:
    """Open-ticket counts of every queue, each bounded: a value above `limit` (it is then
    `limit` + 1) means "more than `limit`", see `count_label`.

    One statement of scalar subqueries, one per queue, each `SELECT count(*) FROM (... LIMIT
    limit + 1)`, so each reads at most `limit` + 1 rows along its queue's index instead of one
    pass over every open ticket of the user's brands."""
    base = tickets_for(user).filter(status__in=OPEN_STATUSES).order_by()
    parts, params = [], []
    for key, queue in QUEUES.items():
        if key == "all":
            continue
        rows = base.filter(queue.condition(user)).values("pk")[: limit + 1]
        try:
            sql, p = rows.query.sql_with_params()
        except EmptyResultSet:  # no brand in scope: nothing to count
            parts.append(f"0 AS {key}")
            continue
        parts.append(f"(SELECT count(*) FROM ({sql}) AS {key}_rows) AS {key}")
        params.extend(p)
    keys = [key for key in QUEUES if key != "all"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return dict(zip(keys, row, strict=True))


def count_label(n: int | None, limit: int = QUEUE_COUNT_LIMIT) -> str:
    """A bounded count for display: "999+" past the limit."""
    if n is None:
        return ""
    return f"{limit:,}+" if n > limit else str(n)


def ticket_workers() -> QuerySet:
    """Active staff who may work tickets (support.change_ticket, by role or directly)."""
    app_label, codename = WORK_PERMISSION
    may_work = Q(
        groups__permissions__content_type__app_label=app_label,
        groups__permissions__codename=codename,
    ) | Q(
        user_permissions__content_type__app_label=app_label,
        user_permissions__codename=codename,
    )
    User = get_user_model()
    workers = User.objects.filter(may_work | Q(is_superuser=True)).values("pk")
    return User.objects.filter(is_active=True, pk__in=workers).order_by("username")


def eligible_assignees(brand: Brand | int) -> QuerySet:
    """Ticket workers who cover `brand` (an object permission on it, directly or through a
    role, or the global brand permission). One query when evaluated."""
    User = get_user_model()
    brand_obj = brand if isinstance(brand, Brand) else Brand.objects.get(pk=brand)
    brand_app, brand_codename = BRAND_PERMISSION.split(".")
    covers_everything = (
        Q(is_superuser=True)
        | Q(
            groups__permissions__content_type__app_label=brand_app,
            groups__permissions__codename=brand_codename,
        )
        | Q(
            user_permissions__content_type__app_label=brand_app,
            user_permissions__codename=brand_codename,
        )
    )
    covers_brand = get_users_with_perms(
        brand_obj, only_with_perms_in=[brand_codename], with_group_users=True,
        with_superusers=True,
    ).values("pk")  # fmt: skip
    coverers = User.objects.filter(covers_everything).values("pk")
    return ticket_workers().filter(Q(pk__in=coverers) | Q(pk__in=covers_brand))


def macros_for(ticket: Ticket) -> QuerySet[Macro]:
    """Active macros offered on `ticket`: its brand's and the all-brand ones."""
    return Macro.objects.filter(is_active=True).filter(
        Q(brand__isnull=True) | Q(brand_id=ticket.brand_id)
    )
