"""Global search: each app registers a provider; the search page asks them all.

A provider is `func(user, query: str, limit: int) -> list[SearchHit]` and must scope its own
queryset with `.restrict(user)`. Register it in the app's `search.py`, imported at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchHit:
    kind: str  # "Player", "Payment", "Ticket", "Staff"
    label: str
    url: str
    detail: str = ""
    status: str = ""


Provider = Callable[..., list[SearchHit]]
_PROVIDERS: list[tuple[int, Provider]] = []


def register_search(order: int = 100):
    def wrap(func: Provider) -> Provider:
        _PROVIDERS.append((order, func))
        _PROVIDERS.sort(key=lambda p: p[0])
        return func

    return wrap


def search_all(user, query: str, limit: int = 10) -> list[SearchHit]:
    query = query.strip()
    if not query:
        return []
    hits: list[SearchHit] = []
    for _, provider in _PROVIDERS:
        hits.extend(provider(user, query, limit))
    return hits


# --- staff (the staff pages' own provider) ---------------------------------------------------


def _register_staff_links() -> None:
    from .links import register_object_url

    register_object_url("backoffice.user", "backoffice:staff_detail")
    register_object_url("auth.group", "backoffice:role_detail")
    register_object_url("backoffice.brand", "backoffice:brand_detail")


_register_staff_links()


@register_search(order=90)
def search_staff(user, query: str, limit: int) -> list[SearchHit]:
    """Staff by id, username or email (exact, or the start of one), for `view_user` holders."""
    if not user.has_perm("backoffice.view_user"):
        return []
    from django.db.models import Q
    from django.urls import reverse

    from .models import User

    q = Q(username__iexact=query) | Q(email__iexact=query)
    if len(query) >= 2:
        q |= Q(username__istartswith=query) | Q(email__istartswith=query)
    if query.isdigit():
        q |= Q(pk=int(query))
    hits = []
    for staff in User.objects.filter(q).order_by("username")[:limit]:
        hits.append(
            SearchHit(
                kind="Staff",
                label=f"{staff.get_full_name() or staff.username} ({staff.username})",
                url=reverse("backoffice:staff_detail", kwargs={"pk": staff.pk}),
                detail=staff.email,
                status="active" if staff.is_active else "disabled",
            )
        )
    return hits
