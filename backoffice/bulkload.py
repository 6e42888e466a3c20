"""Bulk loading empty tables fast, for the demo seeds (and anything else that loads millions
of rows into a fresh database)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from django.db import connection

_SECONDARY_INDEXES = """
SELECT i.relname, pg_get_indexdef(x.indexrelid)
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
 WHERE x.indrelid = %s::regclass AND NOT x.indisprimary AND NOT x.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
"""
_FOREIGN_KEYS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = %s::regclass AND contype = 'f'
"""


@contextlib.contextmanager
def bulk_load(tables: Sequence[str]):
    """Load empty tables the way pg_restore does: without their plain indexes and outgoing
    foreign keys, then build each index once and check each foreign key in one pass.

    Per-row index updates and per-row deferred foreign-key checks are what make a
    million-row load slow; building and validating once over the loaded rows is several times
    faster. Only empty tables (a fresh database) are touched, never a primary key or a
    unique constraint, and all inside the caller's transaction: if anything fails, the
    rollback restores every index and constraint as it was.
    """
    indexes: list[str] = []
    foreign_keys: list[tuple[str, str, str]] = []
    with connection.cursor() as cursor:
        # Check now what the ORM inserted earlier in this transaction: a table with pending
        # deferred checks cannot be altered.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for table in tables:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
            if cursor.fetchone()[0]:
                continue
            cursor.execute(_SECONDARY_INDEXES, [table])
            for name, ddl in cursor.fetchall():
                indexes.append(ddl)
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute(_FOREIGN_KEYS, [table])
            for name, ddl in cursor.fetchall():
                foreign_keys.append((table, name, ddl))
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    yield
    with connection.cursor() as cursor:
        for ddl in indexes:
            cursor.execute(ddl)
        for table, name, ddl in foreign_keys:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
