"""The players app's own panels on the player page (other apps register theirs in their
`panels.py`). Imported from `PlayersConfig.ready`."""

from __future__ import annotations

from backoffice.audit import record_event

from .models import NoteReason
from .panels import PlayerAction, PlayerPanel, register_panel, register_player_action
from .selectors import (
    change_history,
    linked_accounts,
    player_devices,
    player_notes,
    recent_logins,
)


def _profile(player, user) -> dict:
    return {}


def _notes(player, user) -> dict:
    return {"notes": player_notes(player, user, category=NoteReason.Category.GENERAL)}


def _risk_notes(player, user) -> dict:
    notes = player_notes(player, user, category=NoteReason.Category.RISK)
    if notes:
        # Reading risk notes is a sensitive read: it goes on the audit trail.
        record_event(
            "players.risk_notes_viewed",
            actor=user,
            subject=player,
            summary=f"Viewed {len(notes)} risk note(s) of {player.username}",
        )
    return {"notes": notes}


def _linked(player, user) -> dict:
    return {"links": linked_accounts(player, user)}


def _devices(player, user) -> dict:
    return {"devices": player_devices(player), "logins": recent_logins(player)}


def _history(player, user) -> dict:
    return {"entries": change_history(player)}


register_panel(PlayerPanel(
    key="profile", title="Profile", template="players/partials/_panel_profile.html",
    permission="players.view_player", context=_profile, order=10, column="side",
))  # fmt: skip
register_panel(PlayerPanel(
    key="notes", title="Notes", template="players/partials/_panel_notes.html",
    permission="players.view_playernote", context=_notes, order=30, column="side",
))  # fmt: skip
register_panel(PlayerPanel(
    key="risk_notes", title="Risk notes", template="players/partials/_panel_notes.html",
    permission="players.view_risk_notes", context=_risk_notes, order=35, column="side",
))  # fmt: skip
register_panel(PlayerPanel(
    key="linked", title="Linked accounts", template="players/partials/_panel_linked.html",
    permission="players.view_player", context=_linked, order=40, column="side",
))  # fmt: skip
register_panel(PlayerPanel(
    key="devices", title="Devices and logins", template="players/partials/_panel_devices.html",
    permission="players.view_player", context=_devices, order=50, column="side",
))  # fmt: skip
register_panel(PlayerPanel(
    key="history", title="Change history", template="players/partials/_panel_history.html",
    permission="players.view_player", context=_history, order=900, column="main",
))  # fmt: skip

register_player_action(PlayerAction(
    key="restrictions", label="Restrictions", url_name="players:player_restrictions",
    permission="players.change_player_restrictions", icon="slash-circle", order=20,
))  # fmt: skip
register_player_action(PlayerAction(
    key="note", label="Add note", url_name="players:player_note_add",
    permission="players.add_playernote", icon="journal-plus", order=30,
))  # fmt: skip
register_player_action(PlayerAction(
    key="tags", label="Tags", url_name="players:player_tags",
    permission="players.add_playertag", icon="tags", order=40,
))  # fmt: skip
