"""Support on the player page: the tickets panel, the open-tickets count in the header, and
the "Open a ticket" action."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html

from players.panels import (
    HeaderItem,
    PlayerAction,
    PlayerPanel,
    register_header_item,
    register_panel,
    register_player_action,
)

from .models import OPEN_STATUSES, Ticket

PANEL_SIZE = 8


def _tickets(player, user) -> dict:
    tickets = list(
        Ticket.objects.in_brands(user)
        .filter(player_id=player.pk)
        .select_related("assignee")
        .order_by("-id")[: PANEL_SIZE + 1]
    )
    return {"tickets": tickets[:PANEL_SIZE], "more_tickets": len(tickets) > PANEL_SIZE}


def _open_tickets(player, user):
    count = (
        Ticket.objects.in_brands(user).filter(player_id=player.pk, status__in=OPEN_STATUSES).count()
    )
    url = reverse("support:ticket_list") + f"?player={player.pk}&queue=all"
    if not count:
        return format_html('<a href="{}" class="text-body-secondary">none</a>', url)
    return format_html('<a href="{}" class="badge text-bg-warning">{} open</a>', url, count)


register_panel(PlayerPanel(
    key="tickets", title="Tickets", template="support/partials/_player_tickets.html",
    permission="support.view_ticket", context=_tickets, order=20, column="side",
))  # fmt: skip
register_header_item(HeaderItem(
    key="open_tickets", label="Tickets", permission="support.view_ticket",
    value=_open_tickets, order=50,
))  # fmt: skip
register_player_action(PlayerAction(
    key="ticket", label="Open a ticket", url_name="support:ticket_create",
    permission="support.add_ticket", icon="life-preserver", order=10,
))  # fmt: skip
