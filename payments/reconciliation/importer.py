"""Reading a settlement report into staging tables: COPY for the lines, SQL for the checks.

Python reads the file in chunks of whole lines and streams them to the server with COPY, one
line per row of a temporary table (`recon_raw`), while checking the bytes are UTF-8 (chunk by
chunk; only a chunk with a bad byte is looked at line by line, to name the lines). PostgreSQL
then splits the lines into fields, converts and checks every value in one statement
(`recon_parsed`): each line gets the list of what is wrong with it. One wrong line rejects the
file whole; nothing of it is kept.

The staging tables are temporary and dropped at commit: the run is one transaction, and a run
killed half-way leaves nothing behind.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

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


@dataclass(frozen=True)
class Imported:
    line_count: int
    first_at: datetime | None
    last_at: datetime | None


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


def _copy_lines(cursor, stream: BinaryIO, rest: bytes, size: int, progress: Progress) -> list:
    """Stream the lines after the header into recon_raw; returns the encoding errors."""
    errors: list[tuple[int, str]] = []
    line_no = 2  # the first line after the header
    done = 0
    pending = rest
    copy_sql = (
        "COPY recon_raw (line) FROM STDIN "
        "WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e', ENCODING 'UTF8')"
    )
    with cursor.copy(copy_sql) as copy:
        eof = False
        while not eof:
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
            clean = _clean_chunk(chunk, line_no, errors)
            line_no += chunk.count(b"\n")
            if len(errors) < MAX_ERRORS:
                copy.write(clean)
            done += len(chunk)
            progress("Reading the file", min(done / size, 1.0) if size else 1.0)
            if len(errors) >= MAX_ERRORS:
                break
    return errors


_COPY_LINE = re.compile(r"line (\d+)")


def _unquote(expr: str) -> str:
    """SQL for one CSV field: trimmed, surrounding quotes removed, doubled quotes undone."""
    return (
        f"(SELECT CASE WHEN length(v) >= 2 AND left(v, 1) = '\"' AND right(v, 1) = '\"' "
        f"THEN replace(substr(v, 2, length(v) - 2), '\"\"', '\"') ELSE v END "
        f"FROM btrim({expr}) AS v)"
    )


def _parse_sql(fmt: ReportFormat) -> str:
    n = len(fmt.columns)
    field = {role: _unquote(f"f[{fmt.position(role)}]") for role in ROLES}
    kinds = ", ".join(sorted(fmt.kinds))
    if fmt.amount_format == "minor":
        amount_ok = "amount_text ~ '^[0-9]{1,18}$'"
        amount_value = "amount_text::bigint"
        amount_error = "format('amount \"%s\" is not a whole number of minor units', amount_text)"
        scale_error = "NULL"
    else:
        amount_ok = (
            "amount_text ~ '^[0-9]{1,18}([.][0-9]+)?$' AND cur.code IS NOT NULL "
            "AND length(split_part(amount_text, '.', 2)) <= cur.exponent "
            "AND length(split_part(amount_text, '.', 1)) + cur.exponent <= 18"
        )
        amount_value = (
            "split_part(amount_text, '.', 1)::bigint * power(10::numeric, cur.exponent)::bigint "
            "+ COALESCE(NULLIF(rpad(split_part(amount_text, '.', 2), cur.exponent, '0'), '')"
            "::bigint, 0)"
        )
        amount_error = "format('amount \"%s\" is not a decimal number', amount_text)"
        scale_error = (
            "CASE WHEN amount_text ~ '^[0-9]{1,18}([.][0-9]+)?$' AND cur.code IS NOT NULL "
            "THEN format('amount \"%s\" has more decimals than %s allows (%s) or is too large',"
            " amount_text, cur.code, cur.exponent) END"
        )
    return f"""
CREATE TEMP TABLE recon_parsed ON COMMIT DROP AS
WITH split AS (
    SELECT n + 1 AS line_no,
           line,
           CASE WHEN line IS NULL THEN NULL
                WHEN strpos(line, '"') = 0 THEN string_to_array(line, ',')
                ELSE regexp_split_to_array(line, ',(?=(?:[^"]*"[^"]*")*[^"]*$)')
           END AS f,
           line IS NULL OR strpos(line, '"') = 0
             OR line ~ '^(?:"(?:[^"]|"")*"|[^,"]*)(?:,(?:"(?:[^"]|"")*"|[^,"]*))*$' AS quoting_ok
    FROM recon_raw
), fields AS (
    SELECT line_no, line, quoting_ok, COALESCE(cardinality(f), 0) AS nf,
           {field["psp_reference"]} AS psp_reference,
           {field["merchant_reference"]} AS merchant_reference,
           {field["kind"]} AS kind_word,
           {field["amount"]} AS amount_text,
           upper({field["currency"]}) AS currency_text,
           {field["status"]} AS status_word,
           {field["occurred_at"]} AS occurred_text
    FROM split
), shaped AS (
    SELECT fields.*,
           line IS NOT NULL AND quoting_ok AND nf = {n} AS shape_ok,
           regexp_match(occurred_text,
             '^([0-9]{{4}})-([0-9]{{2}})-([0-9]{{2}})(?:[T ]([0-9]{{2}}):([0-9]{{2}})'
             '(?::([0-9]{{2}})(?:[.][0-9]{{1,6}})?)?)?(Z|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)?$') AS d
    FROM fields
), typed AS (
    SELECT shaped.*, k.kind, st.status, cur.code AS currency, cur.exponent,
           CASE WHEN NOT shape_ok OR d IS NULL THEN false
                WHEN d[1]::int NOT BETWEEN 2000 AND 2100 THEN false
                WHEN d[2]::int NOT BETWEEN 1 AND 12 THEN false
                WHEN d[3]::int < 1 OR d[3]::int > date_part('day',
                     make_date(d[1]::int, d[2]::int, 1) + interval '1 month' - interval '1 day')
                     THEN false
                WHEN COALESCE(d[4], '0')::int > 23 OR COALESCE(d[5], '0')::int > 59
                     OR COALESCE(d[6], '0')::int > 59 THEN false
                ELSE true
           END AS date_ok,
           CASE WHEN shape_ok AND {amount_ok} THEN {amount_value} END AS amount
    FROM shaped
    LEFT JOIN unnest(%(kind_words)s::text[], %(kind_values)s::text[]) AS k(word, kind)
           ON shape_ok AND k.word = shaped.kind_word
    LEFT JOIN unnest(%(status_kinds)s::text[], %(status_words)s::text[],
                     %(status_values)s::text[]) AS st(kind, word, status)
           ON st.kind = k.kind AND st.word = shaped.status_word
    LEFT JOIN payments_currency cur ON shape_ok AND cur.code = shaped.currency_text
)
SELECT line_no,
       psp_reference,
       NULLIF(merchant_reference, '') AS merchant_reference,
       kind,
       status,
       currency,
       amount,
       CASE WHEN date_ok THEN occurred_text::timestamptz END AS occurred_at,
       array_remove(ARRAY[
         CASE WHEN line IS NULL THEN 'empty line' END,
         CASE WHEN line IS NOT NULL AND NOT quoting_ok THEN 'unbalanced quotes' END,
         CASE WHEN line IS NOT NULL AND quoting_ok AND nf <> {n}
              THEN format('%%s fields instead of {n}', nf) END,
         CASE WHEN shape_ok AND psp_reference = '' THEN 'no PSP reference'
              WHEN shape_ok AND length(psp_reference) > 100
              THEN 'PSP reference longer than 100 characters' END,
         CASE WHEN shape_ok AND length(merchant_reference) > 100
              THEN 'merchant reference longer than 100 characters' END,
         CASE WHEN shape_ok AND kind IS NULL
              THEN format('unknown type "%%s" (expected one of: {kinds})', kind_word) END,
         CASE WHEN shape_ok AND kind IS NOT NULL AND status IS NULL
              THEN format('unknown status "%%s" for a %%s', status_word, kind) END,
         CASE WHEN shape_ok AND currency IS NULL
              THEN format('unknown currency "%%s"', currency_text) END,
         CASE WHEN shape_ok AND amount IS NULL
              THEN COALESCE({scale_error}, {amount_error}) END,
         CASE WHEN shape_ok AND amount = 0 THEN 'amount is zero' END,
         CASE WHEN shape_ok AND NOT date_ok
              THEN format('date "%%s" is not an ISO 8601 date and time', occurred_text) END
       ], NULL) AS errors
FROM typed
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
    }


def import_lines(
    cursor, stream: BinaryIO, size: int, fmt: ReportFormat, progress: Progress
) -> Imported:
    """Load and check every line of the report into `recon_parsed`; raise `ReportRejected`
    with (line, reason) pairs if any line is wrong. Call inside a transaction."""
    header, rest = _read_header(stream)
    _check_header(header, fmt)
    cursor.execute(
        "CREATE TEMP TABLE recon_raw (n bigint GENERATED ALWAYS AS IDENTITY, line text) "
        "ON COMMIT DROP"
    )
    try:
        with transaction.atomic():
            bad_bytes = _copy_lines(cursor, stream, rest, size, progress)
    except psycopg.errors.DataError as exc:
        # What the byte checks above cannot foresee (a lone carriage return, say): COPY names
        # the line it stopped at, counting from the first line sent (the file's second).
        context = getattr(exc.diag, "context", "") or ""
        found = _COPY_LINE.search(context)
        line = int(found.group(1)) + 1 if found else 0
        detail = (exc.diag.message_primary or str(exc)).strip()
        raise _fail([(line, f"cannot be read: {detail}")])
    if len(bad_bytes) >= MAX_ERRORS:
        raise _fail(bad_bytes)
    progress("Checking every line", 0.0)
    cursor.execute(_parse_sql(fmt), _format_params(fmt))
    cursor.execute(
        "SELECT line_no, array_to_string(errors, '; ') FROM recon_parsed "
        "WHERE cardinality(errors) > 0 ORDER BY line_no LIMIT %s",
        [MAX_ERRORS],
    )
    found_errors = cursor.fetchall()
    if found_errors or bad_bytes:
        cursor.execute("SELECT count(*) FROM recon_parsed WHERE cardinality(errors) > 0")
        total_lines = cursor.fetchone()[0]
        # A line with bad bytes went in blank ("?"): its field errors are noise, not news.
        merged = dict(found_errors)
        merged.update(bad_bytes)
        raise _fail(sorted(merged.items())[:MAX_ERRORS], total_lines)
    cursor.execute("SELECT count(*), min(occurred_at), max(occurred_at) FROM recon_parsed")
    count, first_at, last_at = cursor.fetchone()
    if not count:
        raise _fail([(2, "the report has a header but no line")])
    cursor.execute("ANALYZE recon_parsed")
    return Imported(count, first_at, last_at)
