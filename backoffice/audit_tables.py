"""The audit trail table: newest first, one line per event, ids and actions in monospace."""

from __future__ import annotations

import django_tables2 as tables
from django.utils.html import format_html

from .links import object_url
from .models import AuditEvent
from .templatetags.ui import reltime


class AuditEventTable(tables.Table):
    # Only the id sorts: the trail is read in the order it was written, and sorting millions of
    # rows on an unindexed column is what the capped list exists to avoid.
    id = tables.Column(
        verbose_name="#",
        linkify=("backoffice:audit_detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "id-col"}},
    )
    occurred_at = tables.Column(verbose_name="When", orderable=False)
    actor_label = tables.Column(verbose_name="Actor", orderable=False)
    action = tables.Column(orderable=False, attrs={"td": {"class": "font-monospace"}})
    object = tables.Column(verbose_name="Object", accessor="object_type", orderable=False)
    brand = tables.Column(
        verbose_name="Brand", accessor="brand__name", orderable=False, default="—"
    )
    summary = tables.Column(orderable=False, default="")

    class Meta:
        model = AuditEvent
        fields = ("id", "occurred_at", "actor_label", "action", "object", "brand", "summary")
        attrs = {"class": "table table-sm table-hover align-middle", "data-keyboard-rows": ""}
        empty_text = (
            "No audit event matches these filters in the brands you cover. Events appear here "
            "as staff and services act; widen the dates or clear a filter."
        )

    def render_occurred_at(self, value):
        return reltime(value)

    def render_object(self, record):
        if not record.object_type:
            return "—"
        label = record.object_repr or f"{record.object_type} #{record.object_id}"
        url = object_url(record.object_type, record.object_id)
        kind = format_html('<span class="text-body-secondary small">{}</span>', record.object_type)
        if url:
            return format_html('{} <a href="{}">{}</a>', kind, url, label)
        return format_html("{} {}", kind, label)
