"""Tables of the support pages. Sortable only by indexed columns."""

from __future__ import annotations

import django_tables2 as tables
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.safestring import mark_safe

from backoffice.tables_speed import esc, fast_format_html
from backoffice.templatetags.ui import reltime, status_badge
from players.tables import TABLE_ATTRS

from .models import Macro, Ticket


def _row_class(record) -> str:
    state = record.sla_state
    return f"sla-{state}" if state in ("breached", "warning") else ""


class TicketTable(tables.Table):
    selected = tables.CheckBoxColumn(
        accessor="pk",
        attrs={
            "th__input": {"form": "bulk-form", "aria-label": "Select every ticket on this page",
                          "data-select-all": ""},
            "td__input": {"form": "bulk-form", "class": "form-check-input"},
        },
    )  # fmt: skip
    id = tables.Column(
        verbose_name="#", linkify=("support:ticket_detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "id-col"}},
    )  # fmt: skip
    subject = tables.Column(
        linkify=("support:ticket_detail", {"pk": tables.A("pk")}), orderable=False
    )
    player = tables.Column(
        accessor="player__username", verbose_name="Player", orderable=False,
        linkify=("players:player_detail", {"pk": tables.A("player_id")}),
    )  # fmt: skip
    status = tables.Column(orderable=False)
    priority = tables.Column(orderable=False)
    team = tables.Column(orderable=False)
    # The name, "You", or a Claim button on open unassigned tickets; drawn in Python (a
    # template per row was a third of the queue's rendering time).
    assignee = tables.Column(orderable=False, empty_values=())
    sla_due_at = tables.Column(verbose_name="SLA due")
    updated_at = tables.Column(verbose_name="Updated")

    class Meta:
        model = Ticket
        fields = ()
        sequence = ("selected", "id", "subject", "player", "status", "priority", "team",
                    "assignee", "sla_due_at", "updated_at")  # fmt: skip
        order_by = ("sla_due_at",)
        attrs = TABLE_ATTRS
        row_attrs = {"class": _row_class, "data-ticket": lambda record: record.pk}
        empty_text = (
            "No ticket in this queue for the brands you cover. Change the queue or the filters; "
            "new tickets are opened from a player's page."
        )

    def render_status(self, value, record):
        return status_badge(value, record.get_status_display())

    def render_priority(self, value, record):
        return status_badge(value, record.get_priority_display())

    def render_subject(self, value, record):
        dispute = ' <span class="badge text-bg-danger">dispute</span>' if record.is_dispute else ""
        return mark_safe(
            f'{esc(value)}{dispute}<div class="small text-body-secondary">'
            f"{esc(record.get_category_display())}</div>"
        )

    def render_sla_due_at(self, value, record):
        state = record.sla_state
        if state == "breached":
            return fast_format_html('<span class="text-danger fw-semibold">due {}</span>',
                                    reltime(value))  # fmt: skip
        if state == "warning":
            return fast_format_html('<span class="text-warning-emphasis">{}</span>',
                                    reltime(value))  # fmt: skip
        if not state:
            return mark_safe('<span class="text-body-secondary">paused</span>')
        return reltime(value)

    def render_updated_at(self, value):
        return reltime(value)

    def _claim(self):
        """(may claim, the claim URL cut where the id goes, the CSRF token): once per table,
        not once per row (a queue of unassigned tickets draws a Claim button in every row)."""
        if not hasattr(self, "_claim_parts"):
            request = getattr(self, "request", None)
            user = getattr(request, "user", None)
            may = user is not None and user.has_perm("support.change_ticket")
            url = reverse("support:ticket_claim", kwargs={"pk": 7_391_028_374_651})
            before, after = url.split("7391028374651")
            self._claim_parts = (
                may,
                esc(before),
                esc(after),
                esc(get_token(request)) if may else "",
            )
        return self._claim_parts

    def render_assignee(self, record):
        request = getattr(self, "request", None)
        user = getattr(request, "user", None)
        if record.assignee_id:
            if user is not None and record.assignee_id == user.pk:
                return mark_safe("<strong>You</strong>")
            return record.assignee.get_username()
        if record.is_open and user is not None:
            may, before, after, token = self._claim()
            if may:
                url = f"{before}{record.pk}{after}"
                return mark_safe(
                    f'<form method="post" action="{url}" hx-post="{url}" hx-target="this" '
                    'hx-swap="outerHTML"><input type="hidden" name="csrfmiddlewaretoken" '
                    f'value="{token}"><button class="btn btn-sm btn-outline-primary py-0" '
                    'type="submit">Claim<span class="visually-hidden"> ticket '
                    f"#{record.pk}</span></button></form>"
                )
        return mark_safe('<span class="text-body-secondary">—</span>')


class MacroTable(tables.Table):
    name = tables.Column(linkify=("support:macro_update", {"pk": tables.A("pk")}))
    note_kind = tables.Column(verbose_name="Adds", orderable=False)
    set_status = tables.Column(verbose_name="Sets status", orderable=False)
    set_priority = tables.Column(verbose_name="Sets priority", orderable=False)
    set_team = tables.Column(verbose_name="Routes to", orderable=False)
    brand = tables.Column(orderable=False, default="Every brand")
    is_active = tables.BooleanColumn(verbose_name="Active", orderable=False)

    class Meta:
        model = Macro
        fields = ()
        sequence = ("name", "note_kind", "set_status", "set_priority", "set_team", "brand",
                    "is_active")  # fmt: skip
        attrs = TABLE_ATTRS
        empty_text = "No macro yet. Admins create them for the replies agents send every day."

    def render_set_status(self, value, record):
        return status_badge(value, record.get_set_status_display())
