"""The starting set of note reason codes. Admins edit them afterwards; this never overwrites."""

from django.db import migrations

REASONS = [
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
]


def seed(apps, schema_editor):
    NoteReason = apps.get_model("players", "NoteReason")
    for code, label, category, order, template in REASONS:
        NoteReason.objects.get_or_create(
            code=code,
            defaults={"label": label, "category": category, "order": order, "template": template},
        )


class Migration(migrations.Migration):
    dependencies = [("players", "0002_devices_tags_notes_instruments")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
