"""The benchmark dataset builder at a tiny scale: the ledger it writes balances, every created
row has its "+" history row, and the indexes and keys dropped for the load all come back."""

from __future__ import annotations

import pytest
from django.db import connection

from benchmarks import builders
from benchmarks.dataset import Scale, _our_tables, _truncate_all
from benchmarks.sqlgen import DEFERRED, defer_constraints, restore_constraints
from payments.ledger_check import find_ledger_problems
from payments.models import Account, LedgerEntry, Payment, PaymentTransition
from players.models import Player
from support.models import Ticket

TINY = Scale("T", 300, 2, 30, 50, 1_000, 4)


def _schema() -> set[tuple]:
    """Every index and constraint of the public schema, by name (definitions of partial
    indexes print differently once re-created, though they are the same predicate)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname, '' FROM pg_indexes WHERE schemaname = 'public' "
            "UNION ALL SELECT conrelid::regclass::text, conname, "
            "contype::text || convalidated::text FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace"
        )
        return {row for row in cursor.fetchall() if not row[0].startswith("bench_")}


@pytest.mark.django_db
def test_tiny_dataset_balances_with_history_and_schema_intact():
    before = _schema()
    _truncate_all()
    deferred = defer_constraints(_our_tables())
    assert deferred > 0
    assert _schema() < before
    for _name, build in builders.steps(TINY):
        build(TINY)
    assert restore_constraints() == deferred
    assert _schema() == before
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {DEFERRED}")
        assert cursor.fetchone()[0] == 0

    assert list(find_ledger_problems()) == []
    assert LedgerEntry.objects.count() > 2 * TINY.payments
    assert Player.objects.count() == TINY.players
    assert Player.history.filter(history_type="+").count() == TINY.players
    assert Ticket.history.filter(history_type="+").count() == TINY.tickets
    assert Account.history.count() == Account.objects.count()
    # A "+" row per payment and a "~" row per status change after the first.
    assert Payment.history.filter(history_type="+").count() == Payment.objects.count()
    assert Payment.history.count() == PaymentTransition.objects.count()
