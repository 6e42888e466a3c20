"""Queue counters on the home page. Each app registers the queues its roles work.

A counter is shown to users holding its permission; `count(user)` must be scoped and cheap
(a bounded count on an indexed filter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class QueueCounter:
    key: str
    label: str
    permission: str
    count: Callable[..., int]
    url_name: str
    query: str = ""
    help: str = ""
    order: int = 100


_COUNTERS: dict[str, QueueCounter] = {}


def register_counter(counter: QueueCounter) -> QueueCounter:
    _COUNTERS[counter.key] = counter
    return counter


def counters_for(user) -> list[dict]:
    out = []
    for c in sorted(_COUNTERS.values(), key=lambda c: (c.order, c.label)):
        if not user.has_perm(c.permission):
            continue
        try:
            url = reverse(c.url_name)
        except NoReverseMatch:
            continue
        if c.query:
            url = f"{url}?{c.query}"
        out.append(
            {"key": c.key, "label": c.label, "count": c.count(user), "url": url, "help": c.help}
        )
    return out


# The foundation's own counters.


def _approvals_waiting(user) -> int:
    from .approval_selectors import waiting_for

    return waiting_for(user).order_by()[:1000].count()


register_counter(
    QueueCounter(
        key="approvals_waiting",
        label="Approvals waiting for you",
        permission="backoffice.decide_approvalrequest",
        count=_approvals_waiting,
        url_name="backoffice:approval_list",
        query="waiting=1",
        help="Four-eyes requests from colleagues that your role may decide.",
        order=10,
    )
)
