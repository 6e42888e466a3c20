"""Tables of the players pages. Only indexed columns are sortable, so sorting never scans."""

from __future__ import annotations

import django_tables2 as tables
from django.utils.html import format_html, format_html_join

from backoffice.templatetags.ui import reltime, status_badge

from .models import Player, Tag

TABLE_ATTRS = {"class": "table table-sm table-hover align-middle", "data-keyboard-rows": ""}


class PlayerTable(tables.Table):
    id = tables.Column(
        verbose_name="Id", linkify=("players:player_detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "id-col"}},
    )  # fmt: skip
    username = tables.Column(
        linkify=("players:player_detail", {"pk": tables.A("pk")}), orderable=False
    )
    name = tables.Column(accessor="last_name", verbose_name="Name", orderable=False)
    brand = tables.Column(accessor="brand__name", verbose_name="Brand", orderable=False)
    country = tables.Column(orderable=False)
    currency = tables.Column(orderable=False)
    status = tables.Column(orderable=False)
    kyc_level = tables.Column(verbose_name="KYC", orderable=False)
    restrictions = tables.Column(accessor="pk", verbose_name="Restrictions", orderable=False)
    registered_at = tables.Column(verbose_name="Registered")
    last_activity_at = tables.Column(verbose_name="Last active")

    class Meta:
        model = Player
        fields = ()
        sequence = (
            "id", "username", "name", "brand", "country", "currency", "status", "kyc_level",
            "restrictions", "registered_at", "last_activity_at",
        )  # fmt: skip
        order_by = ("-id",)
        attrs = TABLE_ATTRS
        empty_text = (
            "No player matches these filters in the brands you cover. Search takes a full id, "
            "email, username or phone number, or the start of a name."
        )

    def render_name(self, record):
        return record.full_name

    def render_status(self, value, record):
        return status_badge(value, record.get_status_display())

    def render_restrictions(self, record):
        labels = record.active_restrictions
        if not labels:
            return "—"
        return format_html_join(
            " ", '<span class="badge text-bg-danger">{}</span>', ((lbl,) for lbl in labels)
        )

    def render_registered_at(self, value):
        return reltime(value)

    def render_last_activity_at(self, value):
        return reltime(value)


class TagTable(tables.Table):
    name = tables.Column(linkify=("players:tag_update", {"pk": tables.A("pk")}))
    colour = tables.Column(orderable=False)
    description = tables.Column(orderable=False)

    class Meta:
        model = Tag
        fields = ("name", "description", "colour")
        attrs = TABLE_ATTRS
        empty_text = "No tags yet. Create one to start labelling players."

    def render_colour(self, value, record):
        return format_html(
            '<span class="badge text-bg-{}">{}</span>', value, record.get_colour_display()
        )
