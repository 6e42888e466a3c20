"""Explicit audit events: actions and sensitive reads, hash-chained and append-only.

Services call `record_event(...)` inside their transaction. Chaining takes a transaction-level
advisory lock so two writers never read the same previous hash; the lock is released at commit.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords

GENESIS_HASH = "0" * 64
_AUDIT_LOCK_KEY = 7_311_002  # arbitrary, fixed: the advisory lock guarding the chain's tail


def _canonical(value: Any) -> Any:
    """JSON-safe copy of `value`: dates as ISO strings, Decimals as strings, keys as strings.

    Not yet what PostgreSQL gives back (jsonb rewrites numbers such as 1e16); `record_event`
    passes the value through the database before hashing it.
    """
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(_canonical(value))


def _checked_ip(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"Not an IP address: {value!r}.")


def compute_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    body = json.dumps(
        {"prev": prev_hash, **fields}, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder
    )
    return hashlib.sha256(body.encode()).hexdigest()


def hashed_fields(event) -> dict[str, Any]:
    """The columns a row's hash covers, in a form that survives a database round trip."""
    occurred: datetime = event.occurred_at
    return {
        "occurred_at": occurred.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "brand_id": event.brand_id,
        "summary": event.summary,
        "reason": event.reason,
        "before": event.before,
        "after": event.after,
        "ip_address": event.ip_address,
    }


def _current_ip() -> str | None:
    """The request's address, or None: an odd REMOTE_ADDR (a proxy's "unknown") must not make
    the action being audited fail, so unlike an explicit `ip_address` it is not an error."""
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None:
        return None
    try:
        return _checked_ip(request.META.get("REMOTE_ADDR"))
    except ValueError:
        return None


def describe(obj: models.Model | None) -> tuple[str, str, str]:
    if obj is None:
        return "", "", ""
    return obj._meta.label_lower, str(obj.pk), str(obj)[:200]


def snapshot(obj: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """A JSON-able dict of a model's concrete fields, for before/after."""
    data = {}
    for field in obj._meta.concrete_fields:
        if fields is not None and field.name not in fields:
            continue
        if field.name in ("password",):
            continue
        data[field.attname] = field.value_from_object(obj)
    return _canonical(data)


def _from_db_json(value: Any) -> Any:
    # Django reads jsonb as text and decodes it itself; do the same.
    return json.loads(value) if isinstance(value, str) else value


def record_event(
    action: str,
    *,
    actor=None,
    actor_label: str | None = None,
    subject: models.Model | None = None,
    brand=None,
    summary: str = "",
    reason: str = "",
    before: dict | None = None,
    after: dict | None = None,
    ip_address: str | None = None,
):
    """Append one audit event to the chain and return it.

    `action` is a dotted verb such as "payments.withdrawal.approved" or "audit.exported".
    `brand` defaults to the subject's brand when it has one.
    """
    from .models import AuditEvent

    object_type, object_id, object_repr = describe(subject)
    if brand is None and subject is not None:
        brand_id = getattr(subject, "brand_id", None)
    else:
        brand_id = getattr(brand, "pk", brand)
    # jsonb and inet have their own text forms (1e16 reads back as 10000000000000000, IPv6
    # comes back compressed), so the values hashed are the ones PostgreSQL will return: they
    # take one trip through the database, in the query that takes the chain's lock.
    before_text, after_text, ip = (
        _json_text(before),
        _json_text(after),
        _checked_ip(ip_address) if ip_address is not None else _current_ip(),
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s), %s::jsonb, %s::jsonb, host(%s::inet)",
                [_AUDIT_LOCK_KEY, before_text, after_text, ip],
            )
            _, before_db, after_db, ip_db = cursor.fetchone()
        event = AuditEvent(
            occurred_at=timezone.now(),
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label=actor_label or (actor.get_username() if actor is not None else "system"),
            action=action,
            object_type=object_type,
            object_id=object_id,
            object_repr=object_repr,
            brand_id=int(brand_id) if brand_id is not None else None,
            summary=summary[:300],
            reason=reason,
            before=_from_db_json(before_db),
            after=_from_db_json(after_db),
            ip_address=ip_db,
        )
        last = AuditEvent.objects.order_by("-id").values_list("row_hash", flat=True).first()
        event.prev_hash = last or GENESIS_HASH
        event.row_hash = compute_hash(event.prev_hash, hashed_fields(event))
        event.save(force_insert=True)
    return event


@dataclass
class ChainStats:
    """Filled in by `verify_chain` as it walks: rows checked and the last id seen."""

    rows: int = 0
    last_id: int = 0


def verify_chain(
    batch_size: int = 5000, stats: ChainStats | None = None
) -> Iterator[tuple[int, str]]:
    """Yield (id, problem) for every row whose hash or link does not hold, in id order.

    Rows are read in keyset batches, so memory stays flat however long the chain. A row
    removed from the middle shows as the next row not linking to the one before it; the very
    last rows can be removed without trace, which is why the tail hash is worth noting down.
    """
    from .models import AuditEvent

    stats = stats if stats is not None else ChainStats()
    prev = GENESIS_HASH
    while True:
        rows = list(AuditEvent.objects.filter(id__gt=stats.last_id).order_by("id")[:batch_size])
        if not rows:
            return
        for row in rows:
            if row.prev_hash != prev:
                yield row.id, "does not link to the row before it (a row was removed or altered)"
            elif compute_hash(row.prev_hash, hashed_fields(row)) != row.row_hash:
                yield row.id, "content does not match its hash (the row was altered)"
            prev = row.row_hash
            stats.last_id = row.id
            stats.rows += 1
