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
