"""Errors the support services raise. Their messages are written for staff to read."""

from __future__ import annotations

from backoffice.exceptions import BackofficeError


class SupportError(BackofficeError):
    """Base of the support app's domain errors."""


class InvalidTransition(SupportError):
    """The ticket's status may not move from where it is to where it was asked to go."""


class AlreadyClaimed(SupportError):
    """Someone else holds the ticket (claiming is first come, first served)."""


class InvalidInput(SupportError):
    """An argument was refused: empty note, unknown code, an assignee who may not work it…"""


class NothingToChange(SupportError):
    """The request would leave the ticket exactly as it is."""


class BulkActionRefused(SupportError):
    """At least one ticket of a bulk action could not take it; nothing was changed.

    `errors` maps each refused ticket id to the reason.
    """

    def __init__(self, errors: dict[int, str]):
        self.errors = errors
        listed = "; ".join(f"#{pk}: {why}" for pk, why in sorted(errors.items()))
        super().__init__(f"Nothing was changed. {len(errors)} ticket(s) refused it — {listed}")
