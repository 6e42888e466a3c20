"""Reading a settlement report into staging tables: COPY for the lines, SQL for the checks.

Python reads the file in chunks of whole lines and streams them to the server with COPY,
checking on the way that the bytes are UTF-8 (chunk by chunk; only a chunk with a bad byte is
looked at line by line, to name the lines). PostgreSQL's CSV parser splits the fields into a
temporary table (`recon_fields`); a file it refuses (a line with too many or too few fields,
unbalanced quotes) is streamed again one line per row and split in SQL, so that every bad line
is named, not just the first. The view `recon_lines` converts and checks every value: each
line gets the list of what is wrong with it. It is read once, by the matcher's statement that
classifies the lines, so the file's rows are scanned once for both. One wrong line rejects the
file whole; nothing of it is kept.

The staging tables are temporary and dropped at commit: the run is one transaction, and a run
killed half-way leaves nothing behind.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import django.db.utils
import psycopg
from django.db import transaction

from ..exceptions import ReportRejected
from .formats import ROLES, ReportFormat

CHUNK_SIZE = 1 << 20
MAX_ERRORS = 500
HEADER_MAX = 64 * 1024
# Bytes that cannot travel in the single-column COPY (NUL is not text for PostgreSQL; the
# unit and record separators are the COPY's own delimiter and quote).
FORBIDDEN = (b"\x00", b"\x1e", b"\x1f")

Progress = Callable[[str, float], None]
# A value or a line PostgreSQL refuses: raw from COPY, wrapped by Django from execute().
DATA_ERRORS = (psycopg.errors.DataError, django.db.utils.DataError)


def _fail(errors: list[tuple[int, str]], total: int | None = None) -> ReportRejected:
    errors = sorted(errors)
    total = len(errors) if total is None else total
    first = errors[0]
    message = (
        f"The report was rejected: {total} line{'s' if total != 1 else ''} with errors "
        f"(first: line {first[0]}, {first[1]}). Nothing was imported."
    )
    return ReportRejected(message, errors[:MAX_ERRORS], total)


def _describe_bad_bytes(line: bytes) -> str | None:
    for bad in FORBIDDEN:
        if bad in line:
            return f"contains the control character 0x{bad[0]:02x} at column {line.index(bad) + 1}"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"is not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1}); "
            "save the file as UTF-8"
        )
    if line.rstrip(b"\r") == b"\\.":
        return "is a lone \\. (not a report line)"
    return None


def _clean_chunk(chunk: bytes, first_line_no: int, errors: list) -> bytes:
    """The chunk (whole lines) ready for COPY. Lines that cannot be sent (bad UTF-8, control
    characters) are reported in `errors` and sent blank so the numbering holds."""
    chunk = chunk.replace(b"\r\n", b"\n")
    suspicious = any(b in chunk for b in FORBIDDEN) or b"\\." in chunk
    if not suspicious:
        try:
            codecs.decode(chunk, "utf-8")
            return chunk
        except UnicodeDecodeError:
            pass
    lines = chunk.split(b"\n")
    for i, line in enumerate(lines[:-1]):  # the chunk ends with a newline
        problem = _describe_bad_bytes(line)
        if problem:
            errors.append((first_line_no + i, f"the line {problem}"))
            lines[i] = b"?"
    return b"\n".join(lines)


def _read_header(stream: BinaryIO) -> tuple[bytes, bytes]:
    """(the header line, what was read after it)."""
    data = b""
    while b"\n" not in data and len(data) < HEADER_MAX:
        more = stream.read(CHUNK_SIZE)
        if not more:
            break
        data += more
    header, sep, rest = data.partition(b"\n")
    if not sep and len(data) >= HEADER_MAX:
        raise _fail([(1, "no header line in the first 64 KB: is this a CSV report?")])
    return header, rest


def _check_header(header: bytes, fmt: ReportFormat) -> None:
    header = header.removeprefix(codecs.BOM_UTF8).rstrip(b"\r")
    if not header.strip():
        raise _fail([(1, "the file is empty (no header line)")])
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail([(1, "the header is not valid UTF-8; save the file as UTF-8")])
    found = [c.strip().strip('"').strip() for c in text.split(",")]
    if [c.lower() for c in found] != [c.lower() for c in fmt.columns]:
        raise _fail(
            [
                (
                    1,
                    f"wrong columns for a {fmt.adapter} report: expected "
                    f"{', '.join(fmt.columns)}; found {', '.join(found)}",
                )
            ]
        )


def _stream_chunks(stream: BinaryIO, rest: bytes, size: int, progress: Progress, errors: list):
    """Yield the lines after the header in chunks of whole lines, cleaned (see
    `_clean_chunk`), until the end or until `MAX_ERRORS` bad lines were seen."""
    line_no = 2  # the first line after the header
    done = 0
    pending = rest
    eof = False
    while not eof and len(errors) < MAX_ERRORS:
        more = stream.read(CHUNK_SIZE)
        eof = not more
        pending += more
        if eof:
            # The last line may lack its newline; blank lines at the very end are padding.
            pending = pending.rstrip(b"\r\n")
            if not pending:
                break
            pending += b"\n"
            cut = len(pending)
        else:
            cut = pending.rfind(b"\n") + 1
            if cut == 0:
                continue  # a line longer than a chunk: read on
        chunk, pending = pending[:cut], pending[cut:]
        yield _clean_chunk(chunk, line_no, errors)
        line_no += chunk.count(b"\n")
        done += len(chunk)
        progress("Reading the file", min(done / size, 1.0) if size else 1.0)


_COPY_LINE = re.compile(r"line (\d+)")


def _copy_error(exc: Exception) -> tuple[int, str]:
    """(file line, reason) from a COPY error, whose context counts lines from the first line
    sent (the file's second)."""
    exc = exc.__cause__ if isinstance(exc, django.db.utils.Error) and exc.__cause__ else exc
    context = getattr(exc.diag, "context", "") or ""
    found = _COPY_LINE.search(context)
    line = int(found.group(1)) + 1 if found else 0
    return line, (exc.diag.message_primary or str(exc)).strip()


def _copy_fields(cursor, chunks, n: int) -> None:
    """Fast path: PostgreSQL's own CSV parser splits the fields into recon_fields."""
    columns = ", ".join(f"c{i}" for i in range(1, n + 1))
    with cursor.copy(
        f"COPY recon_fields ({columns}) FROM STDIN "
        f"WITH (FORMAT csv, FORCE_NOT_NULL ({columns}), ENCODING 'UTF8')"
    ) as copy:
        for chunk in chunks:
            copy.write(chunk)


def _copy_raw_and_split(cursor, chunks, n: int) -> None:
    """Slow path, for a file the CSV parser refused: every physical line as one value
    (delimiter and quote are control characters that cannot be in the data), then split in
    SQL, each line that does not have the right shape keeping what is wrong with it."""
    cursor.execute(
        "CREATE TEMP TABLE recon_raw (n bigint GENERATED ALWAYS AS IDENTITY, line text) "
        "ON COMMIT DROP"
    )
    with cursor.copy(
        "COPY recon_raw (line) FROM STDIN "
        "WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e', ENCODING 'UTF8')"
    ) as copy:
        for chunk in chunks:
            copy.write(chunk)
    columns = ", ".join(f"c{i}" for i in range(1, n + 1))
    values = ", ".join(
        f"CASE WHEN NOT has_quote THEN f[{i}] ELSE (SELECT CASE WHEN length(v) >= 2 "
        f"AND left(v, 1) = '\"' AND right(v, 1) = '\"' THEN replace(substr(v, 2, "
        f"length(v) - 2), '\"\"', '\"') ELSE v END FROM (SELECT f[{i}]) AS s(v)) END"
        for i in range(1, n + 1)
    )
    cursor.execute(
        f"""
        INSERT INTO recon_fields (n, {columns}, shape_error)
        SELECT n, {values},
               CASE WHEN line IS NULL THEN 'empty line'
                    WHEN NOT quoting_ok THEN 'unbalanced quotes'
                    WHEN cardinality(f) <> {n}
                    THEN format('%s fields instead of {n}', cardinality(f))
               END
        FROM (
            SELECT n, line, has_quote,
                   CASE WHEN line IS NULL THEN NULL
                        WHEN NOT has_quote THEN string_to_array(line, ',')
                        ELSE regexp_split_to_array(line, ',(?=(?:[^"]*"[^"]*")*[^"]*$)')
                   END AS f,
                   line IS NULL OR NOT has_quote
                     OR line ~ '^(?:"(?:[^"]|"")*"|[^,"]*)(?:,(?:"(?:[^"]|"")*"|[^,"]*))*$'
                     AS quoting_ok
            FROM (SELECT n, line, strpos(line, '"') > 0 AS has_quote FROM recon_raw) AS q
        ) AS split
        """
    )


def _date_masks() -> list[str]:
    """The shapes of the dates we read (digits as 0): ISO 8601 with a T or a space, seconds
    with up to 6 decimals, UTC (Z or nothing) or an offset; or a bare date."""
    masks = ["0000-00-00"]
    for sep in ("T", " "):
        for time_part in ["00:00", "00:00:00", *("00:00:00." + "0" * k for k in range(1, 7))]:
            for tz in ("", "Z", "+00:00", "-00:00", "+0000", "-0000"):
                masks.append(f"0000-00-00{sep}{time_part}{tz}")
    return masks


def _checked_sql(fmt: ReportFormat) -> str:
    """The careful path: every line's values checked before any conversion, so no line can
    stop the statement, and the list of what is wrong with each (NULL when nothing). Slower
    than `_fast_sql`; it runs only on a file that one already refused."""
    # COPY reads an empty unquoted field as NULL: every value is text here, '' when empty.
    col = {role: f"COALESCE(c{fmt.position(role)}, '')" for role in ROLES}
    kinds = ", ".join(sorted(fmt.kinds))
    if fmt.amount_format == "minor":
        amount_ok = "amount_rest = '' AND length(amount_text) BETWEEN 1 AND 18"
        amount_value = "amount_text::bigint"
        amount_error = "format('amount \"%%s\" is not a whole number of minor units', amount_text)"
    else:
        amount_ok = (
            "amount_rest IN ('', '.') AND left(amount_text, 1) <> '.' "
            "AND right(amount_text, 1) <> '.' AND cur.code IS NOT NULL "
            "AND length(split_part(amount_text, '.', 2)) <= cur.exponent "
            "AND length(split_part(amount_text, '.', 1)) + cur.exponent BETWEEN 1 AND 18"
        )
        amount_value = (
            "(split_part(amount_text, '.', 1) "
            "|| rpad(split_part(amount_text, '.', 2), cur.exponent, '0'))::bigint"
        )
        amount_error = (
            "CASE WHEN amount_rest IN ('', '.') AND amount_text NOT IN ('', '.') "
            "AND currency IS NOT NULL "
            'THEN format(\'amount "%%s" has more decimals than %%s allows (%%s) or is too '
            "large', amount_text, currency, exponent) "
            "ELSE format('amount \"%%s\" is not a decimal number', amount_text) END"
        )
    return f"""
WITH fields AS MATERIALIZED (
    SELECT n + 1 AS line_no, shape_error,
           {col["psp_reference"]} AS psp_reference,
           {col["merchant_reference"]} AS merchant_reference,
           {col["kind"]} AS kind_word,
           {col["amount"]} AS amount_text,
           upper({col["currency"]}) AS currency_text,
           {col["status"]} AS status_word,
           {col["occurred_at"]} AS occurred_text
    FROM recon_fields
), typed AS (
    SELECT fields.*, k.kind, st.status, cur.code AS currency, cur.exponent,
           translate(amount_text, '0123456789', '') AS amount_rest,
           translate(occurred_text, '0123456789', '0000000000') AS date_mask
    FROM fields
    LEFT JOIN unnest(%(kind_words)s::text[], %(kind_values)s::text[]) AS k(word, kind)
           ON k.word = fields.kind_word
    LEFT JOIN unnest(%(status_kinds)s::text[], %(status_words)s::text[],
                     %(status_values)s::text[]) AS st(kind, word, status)
           ON st.kind = k.kind AND st.word = fields.status_word
    LEFT JOIN payments_currency cur ON cur.code = fields.currency_text
), checked AS (
    SELECT typed.*,
           CASE WHEN shape_error IS NOT NULL OR date_mask <> ALL(%(date_masks)s::text[])
                THEN false
                WHEN substr(occurred_text, 1, 4)::int NOT BETWEEN 2000 AND 2100 THEN false
                WHEN substr(occurred_text, 6, 2)::int NOT BETWEEN 1 AND 12 THEN false
                WHEN substr(occurred_text, 9, 2)::int NOT BETWEEN 1 AND
                     (ARRAY[31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
                     [substr(occurred_text, 6, 2)::int] THEN false
                WHEN substr(occurred_text, 6, 5) = '02-29'
                     AND (substr(occurred_text, 1, 4)::int %% 4 <> 0
                          OR (substr(occurred_text, 1, 4)::int %% 100 = 0
                              AND substr(occurred_text, 1, 4)::int %% 400 <> 0)) THEN false
                WHEN length(occurred_text) > 10
                     AND (substr(occurred_text, 12, 2)::int > 23
                          OR substr(occurred_text, 15, 2)::int > 59
                          OR (substr(occurred_text, 17, 1) = ':'
                              AND substr(occurred_text, 18, 2)::int > 59)) THEN false
                ELSE true
           END AS date_ok,
           CASE WHEN shape_error IS NULL AND {amount_ok} THEN {amount_value} END AS amount
    FROM typed
)
SELECT line_no, psp_reference, NULLIF(merchant_reference, '') AS merchant_reference, kind,
       status, currency, amount,
       CASE WHEN date_ok THEN occurred_text::timestamptz END AS occurred_at,
       NULLIF(array_remove(ARRAY[
         shape_error,
         CASE WHEN shape_error IS NULL AND psp_reference = '' THEN 'no PSP reference'
              WHEN shape_error IS NULL AND length(psp_reference) > 100
              THEN 'PSP reference longer than 100 characters' END,
         CASE WHEN shape_error IS NULL AND length(merchant_reference) > 100
              THEN 'merchant reference longer than 100 characters' END,
         CASE WHEN shape_error IS NULL AND kind IS NULL
              THEN format('unknown type "%%s" (expected one of: {kinds})', kind_word) END,
         CASE WHEN shape_error IS NULL AND kind IS NOT NULL AND status IS NULL
              THEN format('unknown status "%%s" for a %%s', status_word, kind) END,
         CASE WHEN shape_error IS NULL AND currency IS NULL
              THEN format('unknown currency "%%s"', currency_text) END,
         CASE WHEN shape_error IS NULL AND amount IS NULL THEN {amount_error} END,
         CASE WHEN shape_error IS NULL AND amount = 0
              THEN format('amount "%%s" is zero', amount_text) END,
         CASE WHEN shape_error IS NULL AND NOT date_ok
              THEN format('date "%%s" is not an ISO 8601 date and time', occurred_text) END
       ], NULL), '{{}}') AS errors
FROM checked
"""


def _literal(text: str) -> str:
    """A report word or a currency code as an SQL literal, in a statement run with
    parameters (so a % is doubled)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _case(value: str, mapping: dict[str, str]) -> str:
    """CASE value WHEN key THEN result ... END: for a handful of words, a few comparisons per
    line cost less than a hash join."""
    whens = " ".join(f"WHEN {_literal(k)} THEN {v}" for k, v in mapping.items())
    return f"CASE {value} {whens} END"


def _fast_sql(fmt: ReportFormat, currencies: dict[str, int]) -> str:
    """The optimistic path: convert every line at once with PostgreSQL's own input functions
    and check what a conversion cannot (known type, status and currency, decimals, ranges).
    A value that does not convert stops the statement, and the careful path takes over.
    Values are taken as written (a reference with a space is another reference); only the
    currency code is read in either case. `currencies`: code → exponent."""
    # The fast COPY reads empty fields as '' (FORCE_NOT_NULL); only a line of the wrong
    # shape (from the slow path) has NULLs, and its shape error is all it reports.
    c = {role: f"c{fmt.position(role)}" for role in ROLES}
    kinds = ", ".join(sorted(fmt.kinds))
    kind_case = _case(c["kind"], {w: _literal(k) for w, k in fmt.kinds.items()})
    status_case = _case(
        c["kind"],
        {
            word: _case(
                c["status"],
                {sw: _literal(str(st)) for (k, sw), st in fmt.statuses.items() if k == kind},
            )
            for word, kind in fmt.kinds.items()
        },
    )
    codes = "ARRAY[" + ", ".join(_literal(code) for code in currencies) + "]::text[]"
    currency = c["currency"]
    currency_case = (
        f"CASE WHEN {currency} = ANY({codes}) THEN {currency} "
        f"WHEN upper({currency}) = ANY({codes}) THEN upper({currency}) END"
    )
    exponent_case = _case("currency", {code: str(e) for code, e in currencies.items()})
    amount = c["amount"]
    if fmt.amount_format == "minor":
        amount_value = f"{amount}::bigint"
        amount_error = "'amount is not a whole number of minor units'"
    else:
        # numeric reads "1e3", "NaN" and "Infinity" too: not amounts in a report.
        amount_value = (
            f"CASE WHEN strpos({amount}, 'e') + strpos({amount}, 'E') + strpos({amount}, 'n')"
            f" + strpos({amount}, 'N') = 0 THEN {amount}::numeric END"
        )
        minor = f"amount_value * power(10::numeric, {exponent_case})"
        amount_final = "CASE WHEN minor = trunc(minor) AND abs(minor) < 1e18 THEN minor::bigint END"
        amount_error = (
            'format(\'amount "%%s" has more decimals than %%s allows (%%s), or is not a '
            f"decimal number', amount_text, currency, {exponent_case})"
        )
    at = c["occurred_at"]
    # The conversions sit in a subquery that ends with OFFSET 0, so that PostgreSQL computes
    # them once per line: a subquery it flattens into the next level has its expressions
    # copied into every place that reads them (the date's conversion three times, say). Each
    # such level costs a copy of the row, so there are as few as the amount needs.
    typed = f"""(
        SELECT n + 1 AS line_no, shape_error,
               {c["psp_reference"]} AS psp_reference,
               NULLIF({c["merchant_reference"]}, '') AS merchant_reference,
               {c["kind"]} AS kind_word,
               {c["status"]} AS status_word,
               {c["currency"]} AS currency_text,
               {kind_case} AS kind,
               {status_case} AS status,
               {currency_case} AS currency,
               {amount} AS amount_text,
               {amount_value} AS {"amount" if fmt.amount_format == "minor" else "amount_value"},
               CASE WHEN length({at}) >= 10 AND substr({at}, 5, 1) = '-'
                         AND substr({at}, 8, 1) = '-'
                    THEN {at}::timestamptz END AS occurred_at
        FROM recon_fields
        OFFSET 0
    ) AS typed"""
    if fmt.amount_format == "minor":
        source = typed
    else:
        source = f"""(
    SELECT scaled.*, {amount_final} AS amount
    FROM (SELECT typed.*, {minor} AS minor FROM {typed} OFFSET 0) AS scaled
    OFFSET 0
) AS converted"""
    return f"""
SELECT line_no, psp_reference, merchant_reference, kind, status, currency, amount,
       occurred_at,
       CASE WHEN shape_error IS NULL AND psp_reference <> ''
                 AND length(psp_reference) <= 100
                 AND COALESCE(length(merchant_reference), 0) <= 100
                 AND kind IS NOT NULL AND status IS NOT NULL AND currency IS NOT NULL
                 AND amount > 0
                 AND occurred_at >= '2000-01-01' AND occurred_at < '2101-01-01'
            THEN NULL  -- the common case: nothing to say, no array to build
            WHEN shape_error IS NOT NULL THEN ARRAY[shape_error]
            ELSE NULLIF(array_remove(ARRAY[
         CASE WHEN psp_reference = '' THEN 'no PSP reference'
              WHEN length(psp_reference) > 100
              THEN 'PSP reference longer than 100 characters' END,
         CASE WHEN length(merchant_reference) > 100
              THEN 'merchant reference longer than 100 characters' END,
         CASE WHEN kind IS NULL
              THEN format('unknown type "%%s" (expected one of: {kinds})', kind_word) END,
         CASE WHEN kind IS NOT NULL AND status IS NULL
              THEN format('unknown status "%%s" for a %%s', status_word, kind) END,
         CASE WHEN currency IS NULL THEN format('unknown currency "%%s"', currency_text) END,
         CASE WHEN currency IS NOT NULL AND amount IS NULL THEN {amount_error} END,
         CASE WHEN amount <= 0
              THEN format('amount "%%s" is zero or negative', amount_text) END,
         CASE WHEN occurred_at IS NULL THEN 'the date is not an ISO 8601 date and time'
              WHEN occurred_at < '2000-01-01' OR occurred_at >= '2101-01-01'
              THEN 'the date is out of range' END
       ], NULL), '{{}}') END AS errors
FROM {source}
"""


def _format_params(fmt: ReportFormat) -> dict:
    words = sorted(fmt.kinds)
    statuses = sorted(fmt.statuses.items())
    return {
        "kind_words": words,
        "kind_values": [fmt.kinds[w] for w in words],
        "status_kinds": [k for (k, _), _ in statuses],
        "status_words": [w for (_, w), _ in statuses],
        "status_values": [str(s) for _, s in statuses],
        "date_masks": _date_masks(),
    }


@dataclass
class Staged:
    """The file's lines are in `recon_fields` and readable, typed and checked, through the view
    `recon_lines`; `bad_bytes` are the lines that could not be sent as they were; `careful`
    says whether a value that would not convert made `read_lines` use the careful view."""

    fmt: ReportFormat
    bad_bytes: list[tuple[int, str]]
    careful: bool = False


def _create_view(cursor, fmt: ReportFormat, *, careful: bool) -> None:
    # A view, not a table: the statement that reads it (the matcher's) converts, checks and
    # classifies each line in the same pass over the staging table. Its parameters are bound
    # on the client (Django's psycopg cursor), so they become literals of the view.
    if careful:
        sql = _checked_sql(fmt)
    else:
        cursor.execute("SELECT code, exponent FROM payments_currency ORDER BY code")
        sql = _fast_sql(fmt, dict(cursor.fetchall()))
    cursor.execute("DROP VIEW IF EXISTS recon_lines")
    cursor.execute(f"CREATE TEMP VIEW recon_lines AS {sql}", _format_params(fmt))


# The session's memory for temporary tables. The default (8 MB) keeps none of a million-line
# staging table: every pass over it reads it back from the operating system. With this much,
# the staging tables of a million lines (about 250 MB) stay in memory, and are never written
# out at all since they are dropped at commit. Only what is used is allocated.
TEMP_BUFFERS = "256MB"


def _use_temp_buffers(cursor) -> None:
    """Set `TEMP_BUFFERS` for the session; PostgreSQL refuses once the session has used a
    temporary table (a worker's second run), and the run goes on with what it has."""
    try:
        with transaction.atomic():
            cursor.execute(f"SET temp_buffers = '{TEMP_BUFFERS}'")
    except django.db.utils.DatabaseError:
        pass


def stage_lines(
    cursor, stream: BinaryIO, size: int, fmt: ReportFormat, progress: Progress
) -> Staged:
    """COPY every line of the report into `recon_fields` and create the view `recon_lines`
    over it. Raises `ReportRejected` for a file that is not a report of `fmt` (header) or has
    too many lines that cannot be read at all. Call inside a transaction."""
    header, rest = _read_header(stream)
    _check_header(header, fmt)
    _use_temp_buffers(cursor)
    body_start = len(header) + 1
    n = len(fmt.columns)
    columns = ", ".join(f"c{i} text" for i in range(1, n + 1))
    # The identity's sequence hands out numbers in blocks: one at a time costs a fifth of
    # the COPY.
    cursor.execute(
        f"CREATE TEMP TABLE recon_fields (n bigint GENERATED BY DEFAULT AS IDENTITY "
        f"(CACHE 100000), {columns}, shape_error text) ON COMMIT DROP"
    )
    bad_bytes: list[tuple[int, str]] = []
    try:
        with transaction.atomic():
            _copy_fields(cursor, _stream_chunks(stream, rest, size, progress, bad_bytes), n)
            if bad_bytes:  # a line went in as "?": let the slow path name every bad line
                raise _SlowPath
    except (*DATA_ERRORS, _SlowPath):
        bad_bytes = []
        stream.seek(body_start)
        try:
            with transaction.atomic():
                chunks = _stream_chunks(stream, b"", size, progress, bad_bytes)
                _copy_raw_and_split(cursor, chunks, n)
        except DATA_ERRORS as exc:
            # What the byte checks cannot foresee (a lone carriage return, say).
            line, detail = _copy_error(exc)
            raise _fail([(line, f"cannot be read: {detail}")])
    if len(bad_bytes) >= MAX_ERRORS:
        raise _fail(bad_bytes)
    _create_view(cursor, fmt, careful=False)
    return Staged(fmt, bad_bytes)


def read_lines(cursor, staged: Staged, sql: str, params: dict) -> None:
    """Run `sql`, a statement that reads `recon_lines`, once. The view first converts with
    PostgreSQL's own input functions (fast); if one value does not convert, the statement
    stops, and it runs again over the careful view that checks every value before converting
    it (slower, and only ever for a file that has a bad line)."""
    try:
        with transaction.atomic():
            cursor.execute(sql, params)
            return
    except DATA_ERRORS:
        pass
    _create_view(cursor, staged.fmt, careful=True)
    staged.careful = True
    cursor.execute(sql, params)


def reject_bad_lines(cursor, staged: Staged, error_count: int, line_count: int) -> None:
    """Raise `ReportRejected` with the first bad lines and their reasons if any line of
    `recon_result` (see the matcher) has errors, or if the report has no line."""
    if error_count or staged.bad_bytes:
        cursor.execute(
            "SELECT line_no, array_to_string(errors, '; ') FROM recon_result "
            "WHERE errors IS NOT NULL ORDER BY line_no LIMIT %s",
            [MAX_ERRORS],
        )
        # A line with bad bytes went in as "?": its field errors are noise, not news.
        merged = dict(cursor.fetchall())
        merged.update(staged.bad_bytes)
        raise _fail(sorted(merged.items())[:MAX_ERRORS], max(error_count, len(merged)))
    if not line_count:
        raise _fail([(2, "the report has a header but no line")])


class _SlowPath(Exception):
    pass
