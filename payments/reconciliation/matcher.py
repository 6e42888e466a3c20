"""Matching the staged report against our payments, in SQL.

One statement reads every report line through the importer's view `recon_lines` (converted and
checked) and classifies it in the same pass (`recon_result`): joined to our payments of the PSP
by PSP reference (or, for a payout sent without an answer, whose PSP reference we never
learned, by our own reference), each line is missing on our side, a currency, amount or status
mismatch, or matched. A grouping then finds the references seen more than once, and the lines
after the first of each are duplicates. One more statement finds our payments of the period
that the report should list and does not (missing in the report). The breaks are then upserted
as exceptions, unique per PSP, class and reference, so a re-run or a later report with the same
break adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.apps import apps

from ..models import Discrepancy, ReconciliationException
from . import importer
from .formats import AGREEING_STATUSES, EXPECTED_IN_REPORT

D = Discrepancy

# How much memory the run's joins may use (a hash of a million payments fits; with the
# server's default 4 MB it would spill to disk in many batches).
WORK_MEM = "256MB"


def _quoted(word: str) -> str:
    return "'" + word.replace("'", "''") + "'"


def _agreeing_sql(reported_kind: str, reported_status: str, ours: str) -> str:
    """True when our status `ours` agrees with what the report says (see
    `AGREEING_STATUSES`), as nested CASEs: a few comparisons per line, no join."""
    by_kind: dict[str, list[str]] = {}
    for (kind, reported), statuses in AGREEING_STATUSES.items():
        listed = ", ".join(_quoted(str(s)) for s in statuses)
        by_kind.setdefault(kind, []).append(
            f"WHEN {_quoted(str(reported))} THEN {ours} IN ({listed})"
        )
    whens = " ".join(
        f"WHEN {_quoted(kind)} THEN CASE {reported_status} {' '.join(w)} ELSE false END"
        for kind, w in by_kind.items()
    )
    return f"CASE {reported_kind} {whens} ELSE false END"


def _classify_sql(*, unanswered_payouts: bool) -> str:
    """The statement that checks and classifies every line (see the module's docstring).

    A payout sent without an answer has no PSP reference on our side: its line is matched by
    our reference instead (`b`). When the PSP has no such payout (the usual case) the join is
    left out: it would cost a hash lookup per line for nothing."""
    if unanswered_payouts:
        ours = {c: f"COALESCE(a.{c}, b.{c})" for c in ("id", "kind", "status", "currency_id",
                                                       "amount")}  # fmt: skip
        join_b = """
LEFT JOIN payments_payment b
       ON a.id IS NULL AND b.psp_id = %(psp)s AND b.status = 'sent_to_psp'
      AND b.psp_reference IS NULL AND b.reference = l.merchant_reference"""
    else:
        ours = {c: f"a.{c}" for c in ("id", "kind", "status", "currency_id", "amount")}
        join_b = ""
    agreeing = _agreeing_sql("l.kind", "l.status", ours["status"])
    return f"""
CREATE TEMP TABLE recon_result ON COMMIT DROP AS
SELECT l.line_no, l.psp_reference, l.merchant_reference, l.kind, l.status, l.currency,
       l.amount, l.occurred_at, l.errors, {ours["id"]} AS payment_id,
       -- (a line with errors gets a class too: the file is rejected, nothing is kept)
       CASE WHEN {ours["id"]} IS NULL THEN 'missing_ours'
            WHEN {ours["currency_id"]} <> l.currency THEN 'currency_mismatch'
            WHEN {ours["amount"]} <> l.amount THEN 'amount_mismatch'
            WHEN {ours["kind"]} <> l.kind OR NOT ({agreeing}) THEN 'status_mismatch'
            ELSE 'matched'
       END AS class
FROM recon_lines l
LEFT JOIN payments_payment a ON a.psp_id = %(psp)s AND a.psp_reference = l.psp_reference
{join_b}
"""


UNANSWERED_PAYOUTS_SQL = """
SELECT EXISTS (SELECT 1 FROM payments_payment WHERE psp_id = %s AND status = 'sent_to_psp'
               AND psp_reference IS NULL)
"""

DUPLICATES_SQL = """
CREATE TEMP TABLE recon_dups ON COMMIT DROP AS
SELECT psp_reference, min(line_no) AS first_line, count(*) AS occurrences
FROM recon_result GROUP BY psp_reference HAVING count(*) > 1
"""

MARK_DUPLICATES_SQL = """
UPDATE recon_result r SET class = 'duplicate'
FROM recon_dups d
WHERE d.psp_reference = r.psp_reference AND r.line_no > d.first_line
"""

# One pass for everything the run needs to know about the lines.
SUMMARY_SQL = f"""
SELECT count(*) FILTER (WHERE errors IS NOT NULL), count(*),
       (min(occurred_at) AT TIME ZONE 'UTC')::date, (max(occurred_at) AT TIME ZONE 'UTC')::date,
       {", ".join(f"count(*) FILTER (WHERE class = '{c}')" for c in D.values)}
FROM recon_result
"""

MISSING_SQL = """
CREATE TEMP TABLE recon_missing ON COMMIT DROP AS
SELECT p.id AS payment_id, p.kind, p.amount, p.currency_id, p.status, p.reference,
       p.psp_reference, p.created_at
FROM payments_payment p
JOIN unnest(%(expected_kinds)s::text[], %(expected_statuses)s::text[]) AS e(kind, status)
  ON e.kind = p.kind AND e.status = p.status
WHERE p.psp_id = %(psp)s
  AND p.created_at >= %(start)s AND p.created_at < %(end)s
  AND NOT EXISTS (SELECT 1 FROM recon_result r WHERE r.payment_id = p.id)
"""

# Every break found, one row per exception key (duplicates: one per reference, the first
# repeated line), with both sides: the report's line and our payment.
FOUND_SQL = """
WITH breaks AS MATERIALIZED (SELECT * FROM recon_result WHERE class <> 'matched')
SELECT r.class AS kind, r.psp_reference AS match_key, r.payment_id, r.psp_reference,
       COALESCE(r.merchant_reference, '') AS merchant_reference, r.line_no,
       COALESCE(d.occurrences, 1) AS line_count, r.kind AS psp_kind, r.amount AS psp_amount,
       r.currency AS psp_currency, r.status AS psp_status,
       r.occurred_at AS psp_occurred_at,
       p.amount AS our_amount, COALESCE(p.currency_id, '') AS our_currency,
       COALESCE(p.status, '') AS our_status
FROM (
    SELECT * FROM breaks WHERE class <> 'duplicate'
    UNION ALL
    (SELECT DISTINCT ON (psp_reference) * FROM breaks WHERE class = 'duplicate'
     ORDER BY psp_reference, line_no)
) AS r
LEFT JOIN recon_dups d ON d.psp_reference = r.psp_reference
LEFT JOIN payments_payment p ON p.id = r.payment_id
UNION ALL
SELECT 'missing_psp', COALESCE(psp_reference, reference), payment_id,
       COALESCE(psp_reference, ''), reference, NULL, 0, '', NULL, '', '', NULL,
       amount, currency_id, status
FROM recon_missing
"""


@dataclass(frozen=True)
class Lines:
    """What the report's lines say, once checked and classified."""

    error_count: int  # lines with at least one error (the file is then rejected)
    count: int
    first_day: date | None
    last_day: date | None
    counts: dict[str, int]  # lines per class (missing_psp is counted on our payments later)


def _period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def classify_lines(cursor, staged: importer.Staged, *, psp_id: int) -> Lines:
    """Check and classify every staged line into `recon_result` (one pass over the staging
    table), then mark the duplicates. Call `importer.reject_bad_lines` with the result."""
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    cursor.execute(UNANSWERED_PAYOUTS_SQL, [psp_id])
    classify = _classify_sql(unanswered_payouts=cursor.fetchone()[0])
    importer.read_lines(cursor, staged, classify, {"psp": psp_id})
    # Fresh temporary tables have no statistics: without them the planner may take the
    # grouping and the anti-join below for sorts or nested loops over a million rows. The
    # joins need the row count and how distinct the references are, not fine histograms: a
    # small sample is enough and ten times quicker.
    cursor.execute("SET LOCAL default_statistics_target = 10")
    cursor.execute("ANALYZE recon_result")
    cursor.execute(DUPLICATES_SQL)
    if cursor.rowcount:
        cursor.execute("ANALYZE recon_dups")
        cursor.execute(MARK_DUPLICATES_SQL)
    cursor.execute(SUMMARY_SQL)
    errors, count, first_day, last_day, *per_class = cursor.fetchone()
    return Lines(errors, count, first_day, last_day, dict(zip(D.values, per_class, strict=True)))


def find_missing(
    cursor, lines: Lines, *, psp_id: int, period_start: date, period_end: date
) -> dict[str, int]:
    """Find our payments of the period the report does not list (`recon_missing`); returns
    the count per class, lines and payments."""
    expected = [(k, s) for k, statuses in EXPECTED_IN_REPORT.items() for s in statuses]
    start, end = _period_bounds(period_start, period_end)
    cursor.execute(
        MISSING_SQL,
        {
            "psp": psp_id,
            "start": start,
            "end": end,
            "expected_kinds": [k for k, _ in expected],
            "expected_statuses": [str(s) for _, s in expected],
        },
    )
    return {**lines.counts, D.MISSING_PSP: cursor.rowcount}


def _history_columns() -> list[str]:
    """Columns the exception's history table copies from the exception itself."""
    historical = apps.get_model("payments", "HistoricalReconciliationException")
    own = {f.column for f in ReconciliationException._meta.concrete_fields}
    return [f.column for f in historical._meta.concrete_fields if f.column in own]


def record_exceptions(cursor, *, report_id: int, psp_id: int, brand_id: int) -> dict[str, int]:
    """Upsert the breaks found as exceptions and clear open ones the report now matches.

    New exceptions and changed ones get their history rows in the same set-based statements
    (a bulk write bypasses simple-history's signals). Returns {"new", "seen_again",
    "cleared"}."""
    cursor.execute(f"CREATE TEMP TABLE recon_found ON COMMIT DROP AS {FOUND_SQL}")
    cursor.execute(
        """
        CREATE TEMP TABLE recon_upserted ON COMMIT DROP AS
        WITH upserted AS (
            INSERT INTO payments_reconciliationexception AS e (
                psp_id, brand_id, kind, match_key, report_id, last_report_id, payment_id,
                psp_reference, merchant_reference, line_no, line_count, psp_kind, psp_amount,
                psp_currency, psp_status, psp_occurred_at, our_amount, our_currency,
                our_status, status, resolution_note, created_at)
            SELECT %(psp)s, %(brand)s, kind, match_key, %(report)s, %(report)s, payment_id,
                   psp_reference, merchant_reference, line_no, line_count, psp_kind,
                   psp_amount, psp_currency, psp_status, psp_occurred_at, our_amount,
                   our_currency, our_status, 'open', '', now()
            FROM recon_found
            ORDER BY line_no NULLS LAST, payment_id  -- ids in the report's order
            ON CONFLICT (psp_id, kind, match_key) DO UPDATE
               SET last_report_id = EXCLUDED.last_report_id,
                   payment_id = CASE WHEN e.status = 'open' THEN EXCLUDED.payment_id
                                     ELSE e.payment_id END,
                   line_no = CASE WHEN e.status = 'open' THEN EXCLUDED.line_no
                                  ELSE e.line_no END,
                   line_count = CASE WHEN e.status = 'open' THEN EXCLUDED.line_count
                                     ELSE e.line_count END,
                   psp_amount = CASE WHEN e.status = 'open' THEN EXCLUDED.psp_amount
                                     ELSE e.psp_amount END,
                   psp_status = CASE WHEN e.status = 'open' THEN EXCLUDED.psp_status
                                     ELSE e.psp_status END,
                   our_amount = CASE WHEN e.status = 'open' THEN EXCLUDED.our_amount
                                     ELSE e.our_amount END,
                   our_status = CASE WHEN e.status = 'open' THEN EXCLUDED.our_status
                                     ELSE e.our_status END
             WHERE e.last_report_id IS DISTINCT FROM EXCLUDED.last_report_id
                OR (e.status = 'open' AND (
                    e.payment_id IS DISTINCT FROM EXCLUDED.payment_id
                    OR e.psp_amount IS DISTINCT FROM EXCLUDED.psp_amount
                    OR e.psp_status IS DISTINCT FROM EXCLUDED.psp_status
                    OR e.our_amount IS DISTINCT FROM EXCLUDED.our_amount
                    OR e.our_status IS DISTINCT FROM EXCLUDED.our_status))
            RETURNING e.id, (xmax = 0) AS inserted
        )
        SELECT * FROM upserted
        """,
        {"psp": psp_id, "brand": brand_id, "report": report_id},
    )
    # Clearing compares the open breaks with the matched lines. A break this run found (or
    # found again) is not matched by it, so only the others are candidates. They are few
    # and the lines many: one pass over the lines looks each up in the (hashed) candidates,
    # not the other way round; with no candidate, the lines are not read at all.
    cursor.execute(
        """
        CREATE TEMP TABLE recon_cleared ON COMMIT DROP AS
        WITH open_breaks AS MATERIALIZED (
            SELECT id, match_key, payment_id FROM payments_reconciliationexception
             WHERE psp_id = %(psp)s AND status = 'open' AND kind <> 'duplicate'
               AND (kind, match_key) NOT IN (SELECT kind, match_key FROM recon_found)
        ), hits AS MATERIALIZED (
            SELECT psp_reference, payment_id FROM recon_result
             WHERE class = 'matched'
               AND (psp_reference IN (SELECT match_key FROM open_breaks)
                    OR payment_id IN (SELECT payment_id FROM open_breaks))
        ), cleared AS (
            UPDATE payments_reconciliationexception e
               SET status = 'cleared', resolved_at = now(),
                   resolution_note = 'Matched in report #' || %(report)s || '.'
              FROM open_breaks o
             WHERE e.id = o.id
               AND (o.match_key IN (SELECT psp_reference FROM hits)
                    OR o.payment_id IN (SELECT payment_id FROM hits))
            RETURNING e.id
        )
        SELECT * FROM cleared
        """,
        {"psp": psp_id, "report": report_id},
    )
    names = _history_columns()
    columns = ", ".join(names)
    values = ", ".join(f"e.{name}" for name in names)
    cursor.execute(
        f"""
        INSERT INTO payments_historicalreconciliationexception
               ({columns}, history_date, history_change_reason, history_type)
        SELECT {values}, now(), x.reason, x.type
        FROM payments_reconciliationexception e
        JOIN (SELECT id, CASE WHEN inserted THEN '+' ELSE '~' END AS type,
                     CASE WHEN inserted THEN 'found by report #' || %(report)s
                          ELSE 'seen again in report #' || %(report)s END AS reason
              FROM recon_upserted
              UNION ALL
              SELECT id, '~', 'matched in report #' || %(report)s FROM recon_cleared) AS x
          ON x.id = e.id
        """,
        {"report": report_id},
    )
    cursor.execute(
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
        "FROM recon_upserted"
    )
    new, again = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM recon_cleared")
    cleared = cursor.fetchone()[0]
    return {"new": new, "seen_again": again, "cleared": cleared}
