"""The audit trail: the list (filters, capped pages, CSV export) and one event side by side.

Scoping comes from `AuditEvent.objects.restrict(user)`: events of a brand only for staff of
that brand, brand-less staff events for anyone holding `view_auditevent`.
"""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.utils import timezone

from .audit import GENESIS_HASH, compute_hash, hashed_fields, record_event
from .audit_filters import AuditEventFilterSet
from .audit_tables import AuditEventTable
from .csv_export import FormulaSafe, JsonText, UtcTimestamp, copy_csv_response
from .links import object_url
from .models import AuditEvent
from .scoping import ScopedQuerySet, permission_name
from .views_base import ObjectListView, ScopedDetailView

EXPORT_PERMISSION = "backoffice.export_auditevent"

# (CSV header, column) of the export, each cell rendered by PostgreSQL (see csv_export): times
# in UTC ISO 8601, JSON as jsonb text, and every free-text cell through the formula guard (ids,
# hashes, times and addresses cannot start with a formula character).
EXPORT_COLUMNS = [
    ("id", "id"),
    ("occurred_at_utc", UtcTimestamp("occurred_at")),
    ("actor_id", "actor_id"),
    ("actor", FormulaSafe("actor_label")),
    ("action", FormulaSafe("action")),
    ("object_type", FormulaSafe("object_type")),
    ("object_id", FormulaSafe("object_id")),
    ("object", FormulaSafe("object_repr")),
    ("brand", FormulaSafe("brand__code")),
    ("summary", FormulaSafe("summary")),
    ("reason", FormulaSafe("reason")),
    ("before", JsonText("before")),
    ("after", JsonText("after")),
    ("ip_address", "ip_address"),
    ("prev_hash", "prev_hash"),
    ("row_hash", "row_hash"),
]


class AuditEventListView(ObjectListView):
    """Compliance, Auditor and Admin read the trail; Compliance and Auditor export it."""

    model = AuditEvent
    filterset_class = AuditEventFilterSet
    table_class = AuditEventTable
    title = "Audit trail"
    export_fields = EXPORT_COLUMNS
    export_permission = EXPORT_PERMISSION

    def get_base_queryset(self):
        return AuditEvent.objects.select_related("brand")

    def export(self, qs):
        """Stream exactly the filtered rows, as they stood when the export was asked for.

        The export is itself an audit event; rows written after it (including itself) are not
        in the file, so the file and the event describe the same set.
        """
        if not self.may_export():
            raise PermissionDenied("Your role may read the audit trail but not export it.")
        filterset = self.get_filterset()
        if filterset.is_bound and not filterset.is_valid():
            return HttpResponseBadRequest(
                "The filters are not valid, so nothing was exported. Fix them on the audit "
                "trail page, then export again.",
                content_type="text/plain; charset=utf-8",
            )
        event = record_event(
            "audit.exported",
            actor=self.request.user,
            summary="Exported the audit trail as CSV",
            after={"filters": filterset.active_filters()},
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return copy_csv_response(
            f"audit-trail-{stamp}.csv", EXPORT_COLUMNS, qs.filter(id__lt=event.pk).order_by("id")
        )


def diff_rows(before: Any, after: Any) -> list[dict[str, Any]]:
    """Side-by-side rows of a before/after pair: one per key, `changed` where they differ.

    Non-dict values (a list, a scalar) compare as a single row named "value".
    """
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [_diff_row("value", before, after, before is not None, after is not None)]
    before_d = before if isinstance(before, dict) else {}
    after_d = after if isinstance(after, dict) else {}
    keys = sorted(set(before_d) | set(after_d))
    return [
        _diff_row(k, before_d.get(k), after_d.get(k), k in before_d, k in after_d) for k in keys
    ]


def _diff_row(key, old, new, has_old: bool, has_new: bool) -> dict[str, Any]:
    return {
        "key": key,
        "before": show_value(old) if has_old else None,
        "after": show_value(new) if has_new else None,
        "has_before": has_old,
        "has_after": has_new,
        "changed": has_old != has_new or old != new,
        "block": is_block(old) or is_block(new),
    }


def is_block(value: Any) -> bool:
    """Whether a JSON value is shown as an indented block rather than inline."""
    return isinstance(value, dict | list)


def show_value(value: Any) -> str:
    """A JSON value as staff read it: nested values indented, null spelled out."""
    if is_block(value):
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    if value is None:
        return "null"
    return str(value)


def object_history(event: AuditEvent, user, limit: int = 20) -> list | None:
    """The simple-history rows of the event's object, newest first, when the object's model
    keeps a history and the user may see the object; None otherwise."""
    if not event.object_type or not event.object_id:
        return None
    try:
        model = apps.get_model(event.object_type)
    except (LookupError, ValueError):
        return None
    manager_name = getattr(model._meta, "simple_history_manager_attribute", None)
    if manager_name is None or not user.has_perm(permission_name(model, "view")):
        return None
    try:
        pk = model._meta.pk.to_python(event.object_id)
    except Exception:  # noqa: BLE001 - a malformed id in an old event shows no history
        return None
    objects = model._default_manager.filter(pk=pk)
    if isinstance(objects, ScopedQuerySet) and not objects.in_brands(user).exists():
        return None
    history = getattr(model, manager_name).filter(**{model._meta.pk.attname: pk})
    return list(history.select_related("history_user").order_by("-history_date")[:limit])


class AuditEventDetailView(ScopedDetailView):
    model = AuditEvent
    template_name = "backoffice/audit/event_detail.html"

    def get_base_queryset(self):
        return AuditEvent.objects.select_related("brand", "actor")

    def get_context_data(self, **kwargs):
        event = self.object
        prev_hash = (
            AuditEvent.objects.filter(id__lt=event.pk)
            .order_by("-id")
            .values_list("row_hash", flat=True)
            .first()
        )
        return super().get_context_data(
            title=f"Audit event #{event.pk}",
            diff=diff_rows(event.before, event.after),
            object_link=object_url(event.object_type, event.object_id),
            hash_ok=compute_hash(event.prev_hash, hashed_fields(event)) == event.row_hash,
            link_ok=event.prev_hash == (prev_hash or GENESIS_HASH),
            history=object_history(event, self.request.user),
            **kwargs,
        )
