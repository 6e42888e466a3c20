"""Tickets in global search: by ticket number (#123, T-123 or 123), scoped to the user."""

import re

from django.urls import reverse

from backoffice.search import SearchHit, register_search

from .selectors import tickets_for

_NUMBER = re.compile(r"(?:#|[Tt]-?)?(\d{1,18})")


@register_search(order=30)
def search(user, query: str, limit: int) -> list[SearchHit]:
    m = _NUMBER.fullmatch(query.strip())
    if not m:
        return []
    qs = tickets_for(user).filter(pk=int(m.group(1))).select_related("player")
    return [
        SearchHit(
            kind="Ticket",
            label=f"#{t.pk} {t.subject}",
            url=reverse("support:ticket_detail", kwargs={"pk": t.pk}),
            detail=f"{t.player.username} · {t.get_category_display()} · {t.team}",
            status=t.status,
        )
        for t in qs[:limit]
    ]
