"""Set-based data generation: one `INSERT ... SELECT ... FROM generate_series` per table.

The rows are produced inside PostgreSQL, not in Python, so millions of rows take seconds. The
column list comes from the Django model, so a field added later with a plain default is filled
with that default and the builder keeps working; a field that has no default and no expression
here stops the build with its name.
"""

from __future__ import annotations

import json

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
