"""CSV downloads written by PostgreSQL's COPY and streamed in large chunks.

`copy_csv_response(filename, columns, queryset)` turns the page's scoped, filtered, ordered
queryset into `COPY (SELECT ...) TO STDOUT WITH (FORMAT csv)`: the database renders and quotes
every cell, so no row passes through Python's csv writer one at a time, and memory stays flat
however many rows there are. Cells are rendered in SQL by expressions, among them:

- `FormulaSafe(text)`: the formula guard of `views_base.neutralise` (a cell starting with
  = + - @ tab or CR gets a leading apostrophe), and `JsonText(jsonb)`, the same for JSON;
- `UtcTimestamp(datetime)`: the time in UTC, as PostgreSQL writes a timestamp.

Differences from the Python writer: lines end in LF (not CRLF), an empty string is written `""`
and NULL as nothing (a CSV reader gets '' for both, as before), JSON is PostgreSQL's jsonb text
(keys ordered by length, then bytewise, rather than alphabetically), and a time is written
`2026-11-22 10:07:16.000123` (UTC, no offset) rather than `2026-11-22T10:07:16.000123+00:00`.

The COPY runs when the response is iterated, after the view has returned, on the request's
database connection: one statement, so one consistent snapshot. Parameters are
merged into the statement client-side by psycopg (COPY takes no bound parameters).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connections, transaction
from django.db.models import DateTimeField, Expression, F, Func, QuerySet, TextField
from django.http import StreamingHttpResponse

from .views_base import FORMULA_PREFIXES

# Bytes gathered before a chunk is handed to the server: big enough that the WSGI server writes
# a few hundred KB at a time, small enough that memory does not depend on the export's size.
COPY_CHUNK_BYTES = 256 * 1024
# Parallel workers for the COPY's query. A Gather Merge of wide rendered rows costs about a
# third more CPU than a serial scan in id order, and the Python side of the stream needs a
# core of its own: on a small server serial is faster.
COPY_PARALLEL_WORKERS = 0

_FORMULA_CODES = ", ".join(str(ord(prefix)) for prefix in FORMULA_PREFIXES)


class FormulaSafe(Func):
    """A text cell a spreadsheet will not run as a formula: `neutralise`, in SQL."""

    arity = 1
    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        # ascii() is the code point of the first character (0 for '', NULL for NULL), cheaper
        # than comparing a substring.
        return (
            f"CASE WHEN ascii({sql}) IN ({_FORMULA_CODES}) THEN '''' || {sql} ELSE {sql} END",
            (*params, *params, *params),
        )


class JsonText(Func):
    """A jsonb value as its text, guarded like `FormulaSafe`.

    jsonb text starts with { [ " a digit, t, f, n, or "-" for a bare negative number, so only
    numbers can need the apostrophe; testing the type first renders the text once per row (as
    COPY would render the jsonb anyway) rather than twice.
    """

    arity = 1
    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        text = f"({sql})::text"
        return (
            f"CASE WHEN jsonb_typeof({sql}) = 'number' AND ascii({text}) IN ({_FORMULA_CODES}) "
            f"THEN '''' || {text} ELSE {text} END",
            (*params, *params, *params, *params),
        )


class UtcTimestamp(Func):
    """A timestamp in UTC as PostgreSQL writes one, whatever the session's time zone:
    2026-11-22 10:07:16.000123 (trailing zeros of the fraction dropped). Nearly free, where
    to_char() would add a sixth to the export's database time."""

    arity = 1
    output_field = DateTimeField()
    template = "(%(expressions)s AT TIME ZONE 'UTC')"


def copy_statement(queryset: QuerySet, columns: Sequence[tuple[str, Any]]) -> tuple[str, tuple]:
    """`COPY (SELECT <columns> ...) TO STDOUT` for `queryset`'s rows, in its order, and the
    parameters to merge into it. `columns` are (header, field name or expression)."""
    if queryset.query.distinct:
        # DISTINCT would add the ordering columns to the SELECT (and to the file).
        ordering = queryset.query.order_by
        queryset = queryset.model._default_manager.filter(pk__in=queryset.values("pk"))
        queryset = queryset.order_by(*ordering)
    names = {f"csv_{i}": _expression(value) for i, (_, value) in enumerate(columns)}
    rows = queryset.annotate(**names).values_list(*names)
    compiler = rows.query.get_compiler(using=rows.db)
    sql, params = compiler.as_sql()
    if len(compiler.select) != len(columns):  # pragma: no cover - a programming error
        raise ValueError(f"The export selects {len(compiler.select)} columns, not {len(columns)}.")
    return f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", tuple(params)


def _expression(value) -> Expression:
    return F(value) if isinstance(value, str) else value


def header_line(headers: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(headers)
    return out.getvalue().encode()


def stream_copy(
    statement: str, params: Sequence, *, using: str = "default", chunk_bytes: int | None = None
) -> Iterator[bytes]:
    """The output of a `COPY ... TO STDOUT`, in chunks of about `chunk_bytes`.

    Runs in its own transaction (a savepoint inside one), only so that the planner setting
    below applies to this statement alone. If the generator is closed early (the client went
    away), psycopg cancels the COPY and drains it and the transaction is rolled back, so the
    connection is left usable.
    """
    chunk_bytes = chunk_bytes or COPY_CHUNK_BYTES
    connection = connections[using]
    with (
        connection.wrap_database_errors,
        transaction.atomic(using=using),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT set_config('max_parallel_workers_per_gather', %s, true)",
            [str(COPY_PARALLEL_WORKERS)],
        )
        yield from _read_copy(cursor.cursor, statement, params, chunk_bytes)


def _read_copy(cursor, statement: str, params: Sequence, chunk_bytes: int) -> Iterator[bytes]:
    with cursor.copy(statement, params or None) as copy:
        buffer = bytearray()
        for data in copy:  # one row per read: libpq hands COPY data over row by row
            buffer += data
            if len(buffer) >= chunk_bytes:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)


def copy_csv_response(
    filename: str, columns: Sequence[tuple[str, Any]], queryset: QuerySet
) -> StreamingHttpResponse:
    """A streamed CSV download of `queryset` (already scoped, filtered and ordered).

    The header is the first chunk, sent before the query runs; the rows follow in chunks of
    `COPY_CHUNK_BYTES`.
    """
    statement, params = copy_statement(queryset, columns)

    def content() -> Iterator[bytes]:
        yield header_line([header for header, _ in columns])
        yield from stream_copy(statement, params, using=queryset.db)

    response = StreamingHttpResponse(content(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
