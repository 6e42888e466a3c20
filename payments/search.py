"""Global search: payments by id, our reference or the PSP's reference."""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse

from backoffice.money import format_money
from backoffice.search import SearchHit, register_search

from .selectors import payments_for, reference_q


@register_search(order=20)
def search_payments(user, query: str, limit: int) -> list[SearchHit]:
    query = query.strip()
    if not query or len(query) > 100:
        return []
    q = reference_q(query)  # both unique indexes, one probe per PSP (see reference_q)
    if query.isdigit() and len(query) < 19:
        q |= Q(pk=int(query))
    hits = []
    for p in payments_for(user).filter(q).select_related("player").order_by("-id")[:limit]:
        hits.append(
            SearchHit(
                kind="Payment",
                label=f"{p.get_kind_display()} {p.reference}",
                url=reverse("payments:transaction_detail", kwargs={"pk": p.pk}),
                detail=f"{format_money(p.amount, p.currency_id)} · {p.player.username}",
                status=p.status,
            )
        )
    return hits
