"""`manage.py check_ledger` finds what was changed behind the application's back."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from payments.models import Account, LedgerEntry
from payments.services import ledger

pytestmark = pytest.mark.django_db

ENTRY_TABLE = LedgerEntry._meta.db_table


def _tamper(sql: str, params=()) -> None:
    """Run `sql` with triggers off, as someone with direct database access could (the setting
    is transaction-local and the test's transaction is rolled back)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ENTRY_TABLE} SET amount = amount WHERE false")  # trigger is live
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_clean_ledger_passes(player, fund, capsys):
    fund(player, 1000)
    fund(player, 250)
    call_command("check_ledger")
    assert "Ledger OK: 2 transactions, 4 entries" in capsys.readouterr().out


def test_altered_entry_is_named(player, fund):
    fund(player, 1000)
    tampered = fund(player, 250)
    entry = LedgerEntry.objects.filter(transaction=tampered, player=player).get()
    _tamper(f"UPDATE {ENTRY_TABLE} SET amount = 25000 WHERE id = %s", [entry.pk])
    with pytest.raises(CommandError, match=rf"transaction #{tampered.pk}: entries in EUR sum to"):
        call_command("check_ledger")


def test_balanced_tampering_is_caught_by_the_balance_chain(player, fund):
    """Both entries altered so the transaction still sums to zero, and the cached balances
    'fixed' to match: only the running balance_after chain can tell."""
    first = fund(player, 1000)
    fund(player, 500)
    entries = list(LedgerEntry.objects.filter(transaction=first).order_by("id"))
    _tamper(
        f"UPDATE {ENTRY_TABLE} SET amount = amount * 2 WHERE id = ANY(%s)",
        [[e.pk for e in entries]],
    )
    for e in entries:
        Account.objects.filter(pk=e.account_id).update(
            balance=sum(
                LedgerEntry.objects.filter(account_id=e.account_id).values_list("amount", flat=True)
            )
        )
    with pytest.raises(CommandError, match=r"entry #\d+: on account #\d+ records balance"):
        call_command("check_ledger")


def test_cached_balance_drift_names_the_account(player, fund):
    fund(player, 1000)
    cash = ledger.get_wallet(player, "EUR")["cash"]
    Account.objects.filter(pk=cash.pk).update(balance=999)
    with pytest.raises(
        CommandError, match=rf"account #{cash.pk}: cached balance 999 but its entries sum to 1000"
    ):
        call_command("check_ledger")
