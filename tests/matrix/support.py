"""Permission-matrix cases for support tickets (/support/).

Who may do what (from `support/roles.py`): every team role (Support, Payments, Risk,
Compliance, Bonus manager, Game operations) works tickets; Auditor reads them; macros are kept
by Admin and read by everyone who works tickets.
"""

from __future__ import annotations

from types import SimpleNamespace

from tests.matrix import Case

WORKERS = frozenset(
    {"Support", "Payments", "Risk", "Compliance", "Bonus manager", "Game operations"}
)
READERS = WORKERS | {"Auditor"}


def build(world: SimpleNamespace) -> None:
    from tests.factories import PlayerFactory
    from tests.factories.support import MacroFactory, TicketFactory

    player = getattr(world, "player", None) or PlayerFactory(brand=world.brand_a)
    world.ticket_player = player
    world.ticket = TicketFactory(player=player, subject="Matrix: where is my money?")
    world.macro = MacroFactory(name="Matrix macro", body="We are looking into it.",
                               set_status="pending_internal")  # fmt: skip


def _ticket(world):
    return {"pk": world.ticket.pk}


def _action(name: str, data, **extra) -> Case:
    return Case(f"support:{name}", allowed=WORKERS, kwargs=_ticket, scoped=True, get=False,
                post=True, post_data=data, **extra)  # fmt: skip


CASES = [
    Case("support:ticket_list", allowed=READERS, query="?queue=unassigned&priority=normal"),
    Case("support:queue_counts", allowed=READERS),
    Case("support:ticket_bulk", allowed=WORKERS, get=False, post=True,
         post_data=lambda w: {"action": "claim", "selected": [w.ticket.pk]}),
    Case("support:ticket_create", allowed=WORKERS, kwargs=lambda w: {"pk": w.ticket_player.pk},
         scoped=True, post=True,
         post_data={"subject": "Matrix", "category": "other", "priority": "low",
                    "channel": "email", "team": "Support"}),
    Case("support:ticket_detail", allowed=READERS, kwargs=_ticket, scoped=True),
    _action("ticket_claim", {}),
    _action("ticket_assign", {"assignee": "", "team": "Risk"}),
    _action("ticket_status", {"status": "open"}),
    _action("ticket_priority", {"priority": "high"}),
    _action("ticket_note", {"kind": "internal", "body": "Permission matrix"}),
    _action("ticket_macro", lambda w: {"macro": w.macro.pk}),
    _action("ticket_dispute", {"is_dispute": "on"}),
    Case("support:macro_list", allowed=WORKERS | {"Admin", "Auditor"}),
    Case("support:macro_create", allowed={"Admin"}, post=True,
         post_data={"name": "Matrix new", "body": "Hello", "note_kind": "reply"}),
    Case("support:macro_update", allowed={"Admin"}, kwargs=lambda w: {"pk": w.macro.pk},
         post=True, post_data={"name": "Matrix macro", "body": "Edited", "note_kind": "reply"}),
]  # fmt: skip
