"""Errors the players services raise. Their messages are written for staff to read."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from backoffice.exceptions import BackofficeError


class PlayerError(BackofficeError):
    """Base of the players app's domain errors."""


class InvalidStatusTransition(PlayerError):
    """The player's status may not move from where it is to where it was asked to go."""


class NothingToChange(PlayerError):
    """The request would leave the player exactly as it is."""


class InvalidInput(PlayerError):
    """A service argument was refused (empty reason, unknown restriction, inactive reason…)."""


class EscalationRequired(PermissionDenied, PlayerError):
    """The acting user's role may not do this; `roles` are the roles that may."""

    def __init__(self, message: str, *, permission: str, roles: list[str]):
        super().__init__(message)
        self.permission = permission
        self.roles = roles


class RestrictionError(PlayerError):
    """The player may not do this activity now (status or a `block_*` restriction).

    Raised by `players.services.assert_may_deposit` and its siblings; `activity` is one of
    "deposit", "withdraw", "play", "bonus" and `reason` says why in words.
    """

    def __init__(self, message: str, *, player_id: int, activity: str, reason: str):
        super().__init__(message)
        self.player_id = player_id
        self.activity = activity
        self.reason = reason
