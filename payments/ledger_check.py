"""Recompute the ledger from its entries and report what does not add up.

Used by `manage.py check_ledger` and the tests. Each check is one set-based query, so a ledger
of millions of entries is checked in a few sequential scans, not one query per account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection

from .models import Account, LedgerEntry, LedgerTransaction

E = LedgerEntry._meta.db_table
A = Account._meta.db_table
T = LedgerTransaction._meta.db_table


@dataclass(frozen=True)
class LedgerProblem:
    subject: str  # "transaction", "account" or "entry"
    id: int
    message: str

    def __str__(self) -> str:
        return f"{self.subject} #{self.id}: {self.message}"


# (subject, SQL returning (id, detail...) ordered by id, message template)
_CHECKS: list[tuple[str, str, str]] = [
    (
        "transaction",
        f"SELECT transaction_id, currency_id, SUM(amount) FROM {E} "
        f"GROUP BY transaction_id, currency_id HAVING SUM(amount) <> 0 "
        f"ORDER BY transaction_id LIMIT %s",
        "entries in {1} sum to {2}, not zero",
    ),
    (
        "transaction",
        f"SELECT t.id, COUNT(e.id) FROM {T} t LEFT JOIN {E} e ON e.transaction_id = t.id "
        f"GROUP BY t.id HAVING COUNT(e.id) < 2 ORDER BY t.id LIMIT %s",
        "has {1} entries; a transaction needs at least two",
    ),
    (
        "entry",
        f"SELECT e.id, e.account_id FROM {E} e JOIN {A} a ON a.id = e.account_id "
        f"WHERE e.currency_id <> a.currency_id OR e.brand_id <> a.brand_id "
        f"OR e.player_id IS DISTINCT FROM a.player_id ORDER BY e.id LIMIT %s",
        "currency, brand or player differs from its account #{1}",
    ),
    (
        "account",
        f"SELECT a.id, a.balance, COALESCE(s.total, 0) FROM {A} a "
        f"LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM {E} GROUP BY account_id) s "
        f"ON s.account_id = a.id WHERE a.balance <> COALESCE(s.total, 0) ORDER BY a.id LIMIT %s",
        "cached balance {1} but its entries sum to {2}",
    ),
    (
        "entry",
        f"SELECT id, account_id, balance_after, running FROM ("
        f"SELECT id, account_id, balance_after, "
        f"SUM(amount) OVER (PARTITION BY account_id ORDER BY id) AS running FROM {E}) x "
        f"WHERE balance_after <> running ORDER BY id LIMIT %s",
        "on account #{1} records balance {2} after it, but the entries up to it sum to {3}",
    ),
    (
        "account",
        f"SELECT id, balance FROM {A} WHERE player_id IS NOT NULL AND balance < 0 "
        f"ORDER BY id LIMIT %s",
        "is a player account with a negative balance {1}",
    ),
]


def find_ledger_problems(limit_per_check: int = 20) -> Iterator[LedgerProblem]:
    """Yield problems, transactions first, then entries and accounts, each in id order."""
    with connection.cursor() as cursor:
        for subject, sql, template in _CHECKS:
            cursor.execute(sql, [limit_per_check])
            for row in cursor.fetchall():
                yield LedgerProblem(subject, row[0], template.format(*row))


def ledger_totals() -> dict[str, int]:
    """Counts for the command's summary line."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {T}), (SELECT COUNT(*) FROM {E}), "
            f"(SELECT COUNT(*) FROM {A})"
        )
        transactions, entries, accounts = cursor.fetchone()
    return {"transactions": transactions, "entries": entries, "accounts": accounts}
