"""Ledger entries and transactions, payment transitions and webhook rejections are append-only:
the database rejects UPDATE and DELETE on them (bo_forbid_change, from backoffice 0002)."""

from django.db import migrations

TABLES = [
    "payments_ledgerentry",
    "payments_ledgertransaction",
    "payments_paymenttransition",
    "payments_pspwebhookrejection",
]

FORBID = "\n".join(
    f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
    f"FOR EACH ROW EXECUTE FUNCTION bo_forbid_change();"
    for t in TABLES
)
ALLOW = "\n".join(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};" for t in TABLES)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("backoffice", "0002_audit_append_only"),
    ]

    operations = [migrations.RunSQL(FORBID, ALLOW)]
