"""Writing to the unified player timeline. Every app's services call `record` in the same
transaction as the change they describe; the timeline page reads them back (see README).

Kinds are open-ended strings; `KINDS` lists the known ones with their labels for the filter.
A later app adds its kind by calling `register_kind` in its `apps.py`/`timeline.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone

from .models import TimelineEvent

KINDS: dict[str, str] = {
    "account": "Account & profile",
    "login": "Logins & devices",
    "payment": "Payments",
    "ledger": "Wallet movements",
    "game": "Games",
    "bonus": "Bonuses",
    "kyc": "KYC",
    "aml": "AML",
    "limits": "Limits & exclusions",
    "ticket": "Tickets",
    "note": "Notes",
    "staff": "Staff actions",
}


def register_kind(key: str, label: str) -> None:
    KINDS.setdefault(key, label)


def record(
    player,
    kind: str,
    action: str,
    summary: str,
    *,
    subject: models.Model | None = None,
    actor=None,
    actor_label: str = "",
    occurred_at: datetime | None = None,
    visibility: str = "",
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    """Append one event to `player`'s timeline (call inside the writing transaction)."""
    return TimelineEvent.objects.create(**_fields(
        player, kind, action, summary, subject=subject, actor=actor, actor_label=actor_label,
        occurred_at=occurred_at, visibility=visibility, data=data,
    ))  # fmt: skip


def record_many(events: Iterable[dict[str, Any]]) -> None:
    """Bulk append: each dict holds `record`'s arguments by name (for imports and seeding)."""
    TimelineEvent.objects.bulk_create(
        [TimelineEvent(**_fields(**e)) for e in events], batch_size=5000
    )


def _fields(
    player,
    kind,
    action,
    summary,
    *,
    subject=None,
    actor=None,
    actor_label="",
    occurred_at=None,
    visibility="",
    data=None,
) -> dict[str, Any]:
    player_id = getattr(player, "pk", player)
    brand_id = getattr(player, "brand_id", None)
    if brand_id is None:
        from .models import Player

        brand_id = Player.objects.filter(pk=player_id).values_list("brand_id", flat=True).get()
    return {
        "player_id": player_id,
        "brand_id": brand_id,
        "kind": kind,
        "action": action,
        "summary": summary[:300],
        "object_type": subject._meta.label_lower if subject is not None else "",
        "object_id": str(subject.pk) if subject is not None else "",
        "actor_label": actor_label or (actor.get_username() if actor is not None else "system"),
        "occurred_at": occurred_at or timezone.now(),
        "visibility": visibility,
        "data": data or {},
    }
