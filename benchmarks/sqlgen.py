"""Set-based data generation: one `INSERT ... SELECT ... FROM generate_series` per table.

The rows are produced inside PostgreSQL, not in Python, so millions of rows take seconds. The
column list comes from the Django model, so a field added later with a plain default is filled
with that default and the builder keeps working; a field that has no default and no expression
here stops the build with its name.
"""

from __future__ import annotations

import json
import time

from django.contrib.postgres.fields import ArrayField
from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED


def _literal(field: models.Field) -> str:
    default = field.default
    if default is NOT_PROVIDED:
        if field.null:
            return "NULL"
        if isinstance(field, (models.CharField, models.TextField)) and field.blank:
            return "''"
        raise ValueError(f"{field.model.__name__}.{field.name} needs an expression")
    if callable(default):
        name = getattr(default, "__name__", "")
        if name == "now":
            return "now()"
        value = default()
    else:
        value = default
    if isinstance(field, ArrayField):
        if value:
            raise ValueError(f"{field.model.__name__}.{field.name} needs an expression")
        return "'{}'"
    if isinstance(field, models.JSONField):
        return f"'{json.dumps(value)}'::jsonb"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def insert_select(
    model: type[models.Model], exprs: dict[str, str], source: str, *, with_id: bool = False
) -> int:
    """INSERT INTO <model table> SELECT <exprs, defaults> FROM <source>; returns rows written.

    `exprs` maps field names (or attnames like brand_id) to SQL over `source`'s columns.
    """
    cols, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and not with_id and not ({field.name, field.attname} & exprs.keys()):
            continue
        key = field.attname if field.attname in exprs else field.name
        cols.append(f'"{field.column}"')
        values.append(exprs[key] if key in exprs else _literal(field))
    sql = f'INSERT INTO "{model._meta.db_table}" ({", ".join(cols)}) SELECT {", ".join(values)} FROM {source}'
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.rowcount


def reset_sequence(model: type[models.Model]) -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
            f'COALESCE((SELECT MAX(id) FROM "{table}"), 1))'
        )


# Loading into a table with its indexes and foreign keys live costs an index insertion per
# index and an RI check per key for every row; building each index once over the loaded table
# (and checking each foreign key with one join) is several times faster. The definitions are
# kept in a table, not in memory, so a build that is interrupted is repaired by the next one.
DEFERRED = "bench_deferred_ddl"


def defer_constraints(tables: list[str]) -> int:
    """Drop the foreign keys, unique constraints and secondary indexes of `tables`, saving how
    to recreate them; primary keys, check constraints and triggers stay. Returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {DEFERRED} "
            "(seq serial PRIMARY KEY, phase int, drop_sql text, create_sql text)"
        )
        cursor.execute(
            "SELECT oid FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'", [tables]
        )
        oids = [row[0] for row in cursor.fetchall()]
        saved: list[tuple[int, str, str]] = []
        # Foreign keys (phase 3: recreated last, once the rows they check are all there).
        cursor.execute(
            "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s) ORDER BY oid",
            [oids],
        )
        for table, name, definition in cursor.fetchall():
            saved.append(
                (
                    3,
                    f"ALTER TABLE {table} DROP CONSTRAINT {name}",
                    f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}",
                )
            )
        # Secondary indexes, and the unique or exclusion constraints they back (phases 1, 2);
        # an index some foreign key relies on stays.
        cursor.execute(
            "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, "
            "pg_get_indexdef(i.indexrelid), quote_ident(c.conname), pg_get_constraintdef(c.oid) "
            "FROM pg_index i LEFT JOIN pg_constraint c "
            "ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('u', 'x') "
            "WHERE i.indrelid = ANY(%s) AND NOT i.indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid "
            "AND NOT f.conrelid = ANY(%s)) ORDER BY i.indexrelid",
            [oids, oids],
        )
        for table, index, index_def, con_name, con_def in cursor.fetchall():
            if con_name:
                saved.append(
                    (
                        2,
                        f"ALTER TABLE {table} DROP CONSTRAINT {con_name}",
                        f"ALTER TABLE {table} ADD CONSTRAINT {con_name} {con_def}",
                    )
                )
            else:
                saved.append((1, f"DROP INDEX {index}", index_def))
        # Autovacuum would scan each table as soon as its rows commit, then be cancelled by the
        # index builds; the build ends with one VACUUM (ANALYZE) of everything instead.
        cursor.execute("SELECT oid::regclass::text FROM pg_class WHERE oid = ANY(%s)", [oids])
        for (table,) in cursor.fetchall():
            saved.append(
                (
                    4,
                    f"ALTER TABLE {table} SET (autovacuum_enabled = false)",
                    f"ALTER TABLE {table} RESET (autovacuum_enabled)",
                )
            )
        # Drop foreign keys first: a unique index may back one of them.
        for phase, drop_sql, create_sql in sorted(saved, key=lambda s: -s[0]):
            cursor.execute(
                f"INSERT INTO {DEFERRED} (phase, drop_sql, create_sql) VALUES (%s, %s, %s)",
                [phase, drop_sql, create_sql],
            )
            cursor.execute(drop_sql)
    return len(saved)


def restore_constraints(report=None) -> int:
    """Recreate what `defer_constraints` dropped: indexes, then unique constraints, then
    foreign keys (each checked against the loaded rows). Returns how many."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [DEFERRED])
        if cursor.fetchone()[0] is None:
            return 0
        cursor.execute(f"SELECT seq, create_sql FROM {DEFERRED} ORDER BY phase, seq")
        rows = cursor.fetchall()
        for seq, create_sql in rows:
            started = time.perf_counter()
            cursor.execute(create_sql)
            cursor.execute(f"DELETE FROM {DEFERRED} WHERE seq = %s", [seq])
            if report:
                report(create_sql, time.perf_counter() - started)
    return len(rows)
