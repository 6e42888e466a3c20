"""Players in global search: the same matcher as the player list, scoped to the user."""

from django.urls import reverse

from backoffice.search import SearchHit, register_search

from .selectors import players_for, search_players


@register_search(order=10)
def search(user, query: str, limit: int) -> list[SearchHit]:
    qs = search_players(players_for(user), query).select_related("brand").order_by("-id")
    return [
        SearchHit(
            kind="Player",
            label=f"{p.username} · {p.full_name}",
            url=reverse("players:player_detail", kwargs={"pk": p.pk}),
            detail=f"#{p.pk} · {p.brand.name} · {p.email} · {p.country}",
            status=p.status,
        )
        for p in qs[:limit]
    ]
