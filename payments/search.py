"""Global search: payments by id, our reference or the PSP's reference."""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse

from backoffice.money import format_money
from backoffice.search import SearchHit, register_search

from .models import Psp
from .selectors import payments_for


@register_search(order=20)
def search_payments(user, query: str, limit: int) -> list[SearchHit]:
    query = query.strip()
    if not query or len(query) > 100:
        return []
    # psp_id IN (every PSP): the (psp, psp_reference) index, one probe per PSP (see filtersets)
    q = Q(reference=query) | Q(psp_id__in=Psp.objects.values("pk"), psp_reference=query)
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
