"""Every write about tickets: open, claim, assign, move status, prioritise, note, macro,
dispute, bulk. Each runs in one transaction on the locked ticket row(s), checks the transition
map and the permission, writes the change with its history row (acting user and reason) and a
player timeline event, and leaves nothing behind when it refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from backoffice.audit import record_event
from backoffice.scoping import check_in_scope
from players import timeline
from players.models import Player
from players.services import require_permission

from .exceptions import (
    AlreadyClaimed,
    BulkActionRefused,
    InvalidInput,
    InvalidTransition,
    NothingToChange,
    SupportError,
)
from .models import SLA_BY_PRIORITY, TEAM_CHOICES, Macro, Priority, Status, Ticket, TicketNote
from .selectors import eligible_assignees

TICKET_VISIBILITY = "support.view_ticket"
NOTE_VISIBILITY = "support.view_ticketnote"
MAX_NOTE_LENGTH = 10_000
MAX_BULK = 100
TEAMS = {value for value, _ in TEAM_CHOICES}

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _lock(ticket: Ticket | int, user) -> Ticket:
    """The ticket row, locked, if `user` may change it (else it does not exist for them).

    Only the player is joined: after waiting for a lock PostgreSQL re-reads the locked row but
    not the rows joined to it, so a joined assignee could be stale (None when just claimed).
    """
    pk = getattr(ticket, "pk", ticket)
    return (
        Ticket.objects.restrict(user, "change")
        .select_for_update(of=("self",))
        .select_related("player")
        .get(pk=pk)
    )


def _save(ticket: Ticket, user, reason: str, fields: Iterable[str]) -> None:
    ticket.updated_at = timezone.now()
    ticket._history_user = user
    ticket._change_reason = reason[:300] if reason else None
    ticket.save(update_fields=[*set(fields), "updated_at"])


def _event(ticket: Ticket, action: str, summary: str, user, **data: Any) -> None:
    timeline.record(
        ticket.player,
        "ticket",
        action,
        f"Ticket #{ticket.pk}: {summary}",
        subject=ticket,
        actor=user,
        visibility=TICKET_VISIBILITY,
        data=data,
    )


def _sync(target: Ticket | int, source: Ticket) -> None:
    if isinstance(target, Ticket) and target is not source:
        for field in source._meta.concrete_fields:
            setattr(target, field.attname, getattr(source, field.attname))


def _check_linked_object(object_type: str, object_id: str, player: Player) -> None:
    """A linked object must exist, and belong to the same player when it has one."""
    if not object_type and not object_id:
        return
    if not (object_type and object_id):
        raise InvalidInput("A linked object needs both its type and its id.")
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        raise InvalidInput(f"{object_type} is not a kind of object tickets can link to.")
    obj = model._default_manager.filter(pk=object_id).first()
    if obj is None:
        raise InvalidInput(f"There is no {model._meta.verbose_name} #{object_id}.")
    owner = getattr(obj, "player_id", None)
    if owner is not None and owner != player.pk:
        raise InvalidInput(f"That {model._meta.verbose_name} belongs to another player.")


def _check_assignee(ticket: Ticket, assignee) -> None:
    if not eligible_assignees(ticket.brand_id).filter(pk=assignee.pk).exists():
        raise InvalidInput(
            f"{assignee.get_username()} cannot work tickets of this brand "
            "(inactive, no ticket permission or no access to the brand)."
        )


def _apply_status(ticket: Ticket, new_status: str, resolution_code: str = "") -> list[str]:
    """Move `ticket` (in memory) to `new_status`; returns the fields changed. Raises
    InvalidTransition / InvalidInput without touching the row."""
    if new_status not in Status.values:
        raise InvalidInput(f"{new_status!r} is not a ticket status.")
    if new_status not in ticket.allowed_statuses():
        raise InvalidTransition(
            f"A {ticket.get_status_display().lower()} ticket cannot become "
            f"{Status(new_status).label.lower()}."
        )
    now = timezone.now()
    fields = ["status"]
    if new_status in (Status.RESOLVED, Status.CLOSED):
        code = resolution_code or ticket.resolution_code
        if code not in Ticket.Resolution.values:
            raise InvalidInput("Choose a resolution code to resolve or close a ticket.")
        if ticket.is_dispute and ticket.dispute_outcome in ("", Ticket.DisputeOutcome.PENDING):
            raise InvalidInput("Record the dispute's outcome before resolving or closing it.")
        ticket.resolution_code = code
        fields.append("resolution_code")
        if new_status == Status.RESOLVED or ticket.resolved_at is None:
            ticket.resolved_at = now
            fields.append("resolved_at")
        if new_status == Status.CLOSED:
            ticket.closed_at = now
            fields.append("closed_at")
    elif ticket.status == Status.RESOLVED:  # reopened: the resolution no longer holds
        ticket.resolution_code = ""
        ticket.resolved_at = None
        fields += ["resolution_code", "resolved_at"]
    ticket.status = new_status
    return fields


def _add_note(ticket: Ticket, body: str, kind: str, user, macro: Macro | None = None) -> TicketNote:
    body = (body or "").strip()
    if not body:
        raise InvalidInput("Write the note.")
    if len(body) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"Keep the note under {MAX_NOTE_LENGTH} characters.")
    if kind not in (TicketNote.Kind.INTERNAL, TicketNote.Kind.REPLY):
        raise InvalidInput("A note is either internal or a reply to the player.")
    note = TicketNote(
        ticket=ticket, brand_id=ticket.brand_id, kind=kind, body=body, author=user, macro=macro
    )
    note._history_user = user
    note.save()
    timeline.record(
        ticket.player,
        "ticket",
        "ticket.replied" if kind == TicketNote.Kind.REPLY else "ticket.note_added",
        f"Ticket #{ticket.pk}: {'reply' if kind == TicketNote.Kind.REPLY else 'note'} — {body}",
        subject=ticket,
        actor=user,
        visibility=NOTE_VISIBILITY,
        data={"note_id": note.pk},
    )
    return note


def _status_words(old: str, new: str) -> str:
    return f"{Status(old).label} → {Status(new).label}"


# --------------------------------------------------------------------------------------------
# Single-ticket services
# --------------------------------------------------------------------------------------------


@transaction.atomic
def do_create_ticket(
    player: Player | int,
    *,
    subject: str,
    description: str = "",
    category: str = Ticket.Category.OTHER,
    priority: str = Priority.NORMAL,
    channel: str = Ticket.Channel.INTERNAL,
    team: str = "Support",
    object_type: str = "",
    object_id: str = "",
    is_dispute: bool = False,
    assign_to_me: bool = False,
    acting_user,
    created_at=None,
) -> Ticket:
    """Open a ticket on a player the user may see, optionally linked to one of the player's
    objects (a payment, a bonus grant, a game round…). The SLA clock starts now."""
    require_permission(acting_user, "support.add_ticket", "open tickets")
    player = Player.objects.restrict(acting_user, "view").get(pk=getattr(player, "pk", player))
    subject = " ".join((subject or "").split())
    if not subject:
        raise InvalidInput("Give the ticket a subject.")
    if category not in Ticket.Category.values:
        raise InvalidInput("Choose a category.")
    if priority not in Priority.values:
        raise InvalidInput("Choose a priority.")
    if channel not in Ticket.Channel.values:
        raise InvalidInput("Choose a channel.")
    if team not in TEAMS:
        raise InvalidInput("Choose a team.")
    _check_linked_object(object_type, str(object_id or ""), player)
    now = created_at or timezone.now()
    ticket = Ticket(
        brand_id=player.brand_id,
        player=player,
        subject=subject[:200],
        description=(description or "").strip(),
        category=category,
        priority=priority,
        channel=channel,
        team=team,
        created_by=acting_user,
        created_at=now,
        updated_at=now,
        sla_due_at=now + SLA_BY_PRIORITY[priority],
        object_type=object_type,
        object_id=str(object_id or ""),
        is_dispute=is_dispute,
        dispute_outcome=Ticket.DisputeOutcome.PENDING if is_dispute else "",
    )
    if assign_to_me:
        _check_assignee(ticket, acting_user)
        ticket.assignee = acting_user
        ticket.status = Status.OPEN
    ticket._history_user = acting_user
    ticket._change_reason = "Opened"
    ticket.save()
    _event(ticket, "ticket.opened", f"opened — {ticket.subject}", acting_user,
           category=category, priority=priority, dispute=is_dispute)  # fmt: skip
    return ticket


def _claim(ticket: Ticket, user) -> list[str]:
    if ticket.assignee_id == user.pk:
        raise NothingToChange("The ticket is already yours.")
    if ticket.assignee_id is not None:
        raise AlreadyClaimed(f"{ticket.assignee.get_username()} claimed it first.")
    if not ticket.is_open:
        state = ticket.get_status_display().lower()
        raise InvalidTransition(f"A {state} ticket cannot be claimed.")
    ticket.assignee = user
    fields = ["assignee"]
    if ticket.status == Status.NEW:
        ticket.status = Status.OPEN
        fields.append("status")
    return fields


@transaction.atomic
def do_claim_ticket(ticket: Ticket | int, *, acting_user) -> Ticket:
    """Take an unassigned ticket. Race-safe: the row is locked, so of two agents claiming at
    once the second waits, then finds it taken and gets AlreadyClaimed."""
    locked = _lock(ticket, acting_user)
    fields = _claim(locked, acting_user)
    _save(locked, acting_user, "Claimed", fields)
    _event(locked, "ticket.claimed", f"claimed by {acting_user.get_username()}", acting_user)
    _sync(ticket, locked)
    return locked


@transaction.atomic
def do_assign_ticket(
    ticket: Ticket | int, *, assignee=None, team: str | None = None, acting_user, reason: str = ""
) -> Ticket:
    """Give the ticket to `assignee` (None leaves it unassigned) and/or route it to `team`.

    The assignee must be able to work tickets of the ticket's brand."""
    locked = _lock(ticket, acting_user)
    if not locked.is_open:
        raise InvalidTransition("Only open tickets can be reassigned.")
    fields, words = [], []
    if team is not None and team != locked.team:
        if team not in TEAMS:
            raise InvalidInput("Choose a team.")
        locked.team = team
        fields.append("team")
        words.append(f"routed to {team}")
    if (assignee.pk if assignee else None) != locked.assignee_id:
        if assignee is not None:
            _check_assignee(locked, assignee)
        locked.assignee = assignee
        fields.append("assignee")
        words.append(f"assigned to {assignee.get_username()}" if assignee else "unassigned")
        if assignee is not None and locked.status == Status.NEW:
            locked.status = Status.OPEN
            fields.append("status")
    if not fields:
        raise NothingToChange("The ticket already has that assignee and team.")
    _save(locked, acting_user, reason or "; ".join(words), fields)
    _event(locked, "ticket.assigned", ", ".join(words), acting_user)
    _sync(ticket, locked)
    return locked


@transaction.atomic
def do_change_ticket_status(
    ticket: Ticket | int,
    new_status: str,
    *,
    acting_user,
    resolution_code: str = "",
    note: str = "",
) -> Ticket:
    """Move the ticket along `Ticket.TRANSITIONS`. Resolving or closing needs a resolution code
    (and a dispute its outcome); reopening a resolved ticket clears its resolution. An optional
    note is added as an internal note in the same transaction."""
    note = (note or "").strip()
    if note:
        require_permission(acting_user, "support.add_ticketnote", "add ticket notes")
    locked = _lock(ticket, acting_user)
    old = locked.status
    fields = _apply_status(locked, new_status, resolution_code)
    _save(locked, acting_user, note or _status_words(old, new_status), fields)
    if note:
        _add_note(locked, note, TicketNote.Kind.INTERNAL, acting_user)
    _event(locked, "ticket.status_changed", _status_words(old, new_status), acting_user,
           **{"from": old, "to": new_status, "resolution": locked.resolution_code})  # fmt: skip
    _sync(ticket, locked)
    return locked


@transaction.atomic
def do_change_ticket_priority(
    ticket: Ticket | int, priority: str, *, acting_user, reason: str = ""
) -> Ticket:
    """Change the priority; the SLA due time follows it (counted from the ticket's creation)."""
    locked = _lock(ticket, acting_user)
    if priority not in Priority.values:
        raise InvalidInput("Choose a priority.")
    if priority == locked.priority:
        raise NothingToChange("The ticket already has that priority.")
    old = locked.priority
    locked.priority = priority
    locked.sla_due_at = locked.created_at + SLA_BY_PRIORITY[priority]
    words = f"priority {Priority(old).label} → {Priority(priority).label}"
    _save(locked, acting_user, reason or words, ["priority", "sla_due_at"])
    _event(locked, "ticket.priority_changed", words, acting_user)
    _sync(ticket, locked)
    return locked


@transaction.atomic
def do_add_ticket_note(
    ticket: Ticket | int, *, body: str, kind: str = TicketNote.Kind.INTERNAL, acting_user
) -> TicketNote:
    """Add an internal note or record a reply sent to the player."""
    require_permission(acting_user, "support.add_ticketnote", "add ticket notes")
    locked = _lock(ticket, acting_user)
    if locked.status == Status.CLOSED:
        raise InvalidTransition("A closed ticket takes no more notes; open a new ticket.")
    note = _add_note(locked, body, kind, acting_user)
    _save(locked, acting_user, "Note added", [])
    return note


@transaction.atomic
def do_apply_macro(ticket: Ticket | int, macro: Macro | int, *, acting_user) -> Ticket:
    """Apply a macro in one step: its note, then its status, priority and team. Either all of
    it applies or none (a refused status move rolls the note back too)."""
    require_permission(acting_user, "support.add_ticketnote", "add ticket notes")
    locked = _lock(ticket, acting_user)
    macro = Macro.objects.filter(pk=getattr(macro, "pk", macro), is_active=True).first()
    if macro is None or (macro.brand_id is not None and macro.brand_id != locked.brand_id):
        raise InvalidInput("That macro is not available on this ticket.")
    if locked.status == Status.CLOSED:
        raise InvalidTransition("A closed ticket cannot take a macro.")
    old_status = locked.status
    fields: list[str] = []
    if macro.set_status and macro.set_status != locked.status:
        fields += _apply_status(locked, macro.set_status, macro.set_resolution_code)
    if macro.set_priority and macro.set_priority != locked.priority:
        locked.priority = macro.set_priority
        locked.sla_due_at = locked.created_at + SLA_BY_PRIORITY[macro.set_priority]
        fields += ["priority", "sla_due_at"]
    if macro.set_team and macro.set_team != locked.team:
        locked.team = macro.set_team
        fields.append("team")
    _add_note(locked, macro.body, macro.note_kind, acting_user, macro=macro)
    _save(locked, acting_user, f"Macro: {macro.name}", fields)
    summary = f"macro {macro.name}"
    if "status" in fields:
        summary += f" ({_status_words(old_status, locked.status)})"
    _event(locked, "ticket.macro_applied", summary, acting_user, macro=macro.name)
    _sync(ticket, locked)
    return locked


@transaction.atomic
def do_set_dispute(
    ticket: Ticket | int, *, is_dispute: bool, outcome: str = "", acting_user, note: str = ""
) -> Ticket:
    """Flag or unflag a dispute, or record its outcome.

    Flagging sets the outcome to pending. Deciding an outcome needs `support.decide_dispute`
    (Compliance) and is written to the audit trail. A decided dispute cannot be unflagged."""
    locked = _lock(ticket, acting_user)
    before = {"is_dispute": locked.is_dispute, "dispute_outcome": locked.dispute_outcome}
    Outcome = Ticket.DisputeOutcome
    if not is_dispute:
        if not locked.is_dispute:
            raise NothingToChange("The ticket is not a dispute.")
        if locked.dispute_outcome not in ("", Outcome.PENDING):
            raise InvalidInput("A decided dispute stays a dispute.")
        locked.is_dispute, locked.dispute_outcome = False, ""
        words = "no longer a dispute"
    else:
        outcome = outcome or (locked.dispute_outcome or Outcome.PENDING)
        if outcome not in Outcome.values:
            raise InvalidInput("Choose an outcome.")
        if locked.is_dispute and outcome == locked.dispute_outcome:
            raise NothingToChange("The dispute already has that outcome.")
        if outcome != Outcome.PENDING:
            require_permission(acting_user, "support.decide_dispute", "decide disputes")
            if not (note or "").strip():
                raise InvalidInput("Explain the outcome in a note.")
        locked.is_dispute, locked.dispute_outcome = True, outcome
        words = (
            "flagged as a dispute"
            if outcome == Outcome.PENDING
            else f"dispute outcome: {Outcome(outcome).label}"
        )
    _save(locked, acting_user, note or words, ["is_dispute", "dispute_outcome"])
    if (note or "").strip():
        _add_note(locked, note, TicketNote.Kind.INTERNAL, acting_user)
    if locked.dispute_outcome not in ("", Outcome.PENDING):
        record_event(
            "support.dispute_decided",
            actor=acting_user,
            subject=locked,
            summary=f"Ticket #{locked.pk} {words}",
            reason=note,
            before=before,
            after={"is_dispute": locked.is_dispute, "dispute_outcome": locked.dispute_outcome},
        )
    _event(locked, "ticket.dispute", words, acting_user, outcome=locked.dispute_outcome)
    check_in_scope(acting_user, locked, "change")
    _sync(ticket, locked)
    return locked


# --------------------------------------------------------------------------------------------
# Bulk
# --------------------------------------------------------------------------------------------

BULK_ACTIONS = {
    "claim": "Claim",
    "assign": "Assign to…",
    "unassign": "Unassign",
    "priority": "Set priority…",
    "status": "Set status…",
}


@transaction.atomic
def do_bulk_update_tickets(
    ticket_ids: Iterable[int],
    *,
    action: str,
    acting_user,
    assignee=None,
    priority: str = "",
    status: str = "",
    resolution_code: str = "",
) -> int:
    """Apply one action to many tickets, all or nothing: the rows are locked in id order (so
    two bulk actions never deadlock), every ticket is checked, and if any refuses, nothing is
    written and BulkActionRefused lists why. Returns how many tickets changed."""
    ids = sorted({int(pk) for pk in ticket_ids})
    if not ids:
        raise InvalidInput("Select at least one ticket.")
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"Select at most {MAX_BULK} tickets at a time.")
    if action not in BULK_ACTIONS:
        raise InvalidInput("Choose an action.")
    if action == "assign" and assignee is None:
        raise InvalidInput("Choose whom to assign the tickets to.")
    if action == "priority" and priority not in Priority.values:
        raise InvalidInput("Choose a priority.")
    if action == "status" and status not in Status.values:
        raise InvalidInput("Choose a status.")
    locked = list(
        Ticket.objects.restrict(acting_user, "change")
        .select_for_update(of=("self",))
        .select_related("player")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    errors: dict[int, str] = dict.fromkeys(ids, "not found in your brands")
    planned: list[tuple[Ticket, list[str], str]] = []
    for ticket in locked:
        del errors[ticket.pk]
        old_status = ticket.status
        try:
            if action == "claim":
                fields, words = _claim(ticket, acting_user), "claimed (bulk)"
            elif action in ("assign", "unassign"):
                target = assignee if action == "assign" else None
                if not ticket.is_open:
                    raise InvalidTransition("closed or resolved")
                if (target.pk if target else None) == ticket.assignee_id:
                    raise NothingToChange("already so assigned")
                if target is not None:
                    _check_assignee(ticket, target)
                ticket.assignee = target
                fields = ["assignee"]
                if target is not None and ticket.status == Status.NEW:
                    ticket.status = Status.OPEN
                    fields.append("status")
                words = f"assigned to {target.get_username()}" if target else "unassigned"
            elif action == "priority":
                if ticket.priority == priority:
                    raise NothingToChange("already that priority")
                ticket.priority = priority
                ticket.sla_due_at = ticket.created_at + SLA_BY_PRIORITY[priority]
                fields, words = ["priority", "sla_due_at"], f"priority {Priority(priority).label}"
            else:
                fields = _apply_status(ticket, status, resolution_code)
                words = _status_words(old_status, status)
        except SupportError as exc:
            errors[ticket.pk] = str(exc)
            continue
        planned.append((ticket, fields, words))
    if errors:
        raise BulkActionRefused(errors)
    for ticket, fields, words in planned:
        _save(ticket, acting_user, f"Bulk: {words}", fields)
        _event(ticket, f"ticket.bulk_{action}", words, acting_user)
    return len(planned)


# --------------------------------------------------------------------------------------------
# Macros (kept by admins)
# --------------------------------------------------------------------------------------------

MACRO_FIELDS = ("name", "body", "note_kind", "set_status", "set_resolution_code",
                "set_priority", "set_team", "brand", "is_active")  # fmt: skip


def _validate_macro(macro: Macro) -> None:
    if not macro.name.strip() or not macro.body.strip():
        raise InvalidInput("A macro needs a name and a text.")
    if macro.set_status in (Status.RESOLVED, Status.CLOSED) and not macro.set_resolution_code:
        raise InvalidInput("A macro that resolves or closes tickets needs a resolution code.")
    if Macro.objects.filter(name__iexact=macro.name.strip()).exclude(pk=macro.pk).exists():
        raise InvalidInput(f"A macro called {macro.name} already exists.")


@transaction.atomic
def do_save_macro(macro: Macro | None, *, data: dict[str, Any], acting_user) -> Macro:
    """Create (macro=None) or edit a macro from cleaned form data."""
    perm = "support.add_macro" if macro is None else "support.change_macro"
    require_permission(acting_user, perm, "edit macros")
    macro = Macro() if macro is None else Macro.objects.select_for_update().get(pk=macro.pk)
    for field in MACRO_FIELDS:
        if field in data:
            setattr(macro, field, data[field])
    macro.name = macro.name.strip()
    _validate_macro(macro)
    macro._history_user = acting_user
    macro.save()
    return macro
