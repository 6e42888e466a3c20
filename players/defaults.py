"""The starting vocabulary of note reason codes.

Migration 0003 wrote this list into new databases (migrations keep their own frozen copy);
`ensure_note_reasons()` puts back any that are missing, never overwriting what admins changed.
The demo seed and the tests call it, because a test database flushed by a transactional test
loses the rows a data migration wrote.
"""

from __future__ import annotations

from .models import NoteReason

DEFAULT_NOTE_REASONS = [
    # (code, label, category, order, template)
    ("contact", "Player contact", "general", 10,
     "Player contacted us by {channel} about: \nWhat we told them: \n"),
    ("payment-query", "Payment query", "general", 20,
     "Player asked about payment reference: \nStatus found: \nNext step promised: \n"),
    ("complaint", "Complaint", "general", 30,
     "Complaint about: \nPlayer's expected outcome: \nAgreed follow-up: \n"),
    ("kyc-request", "Documents requested", "general", 40,
     "Documents requested: \nDeadline given to the player: \n"),
    ("rg-concern", "Responsible gambling concern", "general", 50,
     "Signs observed: \nTools offered (limits, time-out, self-exclusion): \nPlayer's answer: \n"),
    ("account-change", "Account change", "general", 60,
     "Changed: \nRequested by / verified how: \n"),
    ("risk-multi-account", "Suspected multi-accounting", "risk", 10,
     "Linked accounts: \nShared device / IP / instrument: \nAction taken: \n"),
    ("risk-bonus-abuse", "Suspected bonus abuse", "risk", 20,
     "Bonus / campaign: \nPattern seen: \nAction taken: \n"),
    ("risk-chargeback", "Chargeback risk", "risk", 30,
     "Payment reference: \nPSP / reason code: \nAction taken: \n"),
    ("risk-fraud", "Payment fraud suspicion", "risk", 40,
     "Instrument: \nIndicators: \nAction taken: \n"),
    ("risk-aml", "AML observation", "risk", 50,
     "Activity observed: \nSource of funds known: \nReferred to compliance: \n"),
]  # fmt: skip


def ensure_note_reasons() -> dict[str, NoteReason]:
    """Create the default reason codes that do not exist; return every reason by code."""
    existing = {r.code: r for r in NoteReason.objects.all()}
    for code, label, category, order, template in DEFAULT_NOTE_REASONS:
        if code in existing:
            continue
        reason = NoteReason(
            code=code, label=label, category=category, order=order, template=template
        )
        reason._change_reason = "Default reason codes"
        reason.save()
        existing[code] = reason
    return existing
