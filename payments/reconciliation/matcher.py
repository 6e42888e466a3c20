"""Matching the staged report against our payments, in SQL.

One statement classifies every report line (`recon_result`): joined to our payments of the PSP
by PSP reference (or, for a payout sent without an answer, whose PSP reference we never
learned, by our own reference), each line is a duplicate (a reference seen
earlier in the report), missing on our side, a currency, amount or status mismatch, or
matched. One more finds our payments of the period that the report should list and does not
(missing in the report). The breaks are then upserted as exceptions, unique per PSP, class and
reference, so a re-run or a later report with the same break adds nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.apps import apps

from ..models import Discrepancy, ReconciliationException
from .formats import AGREEING_STATUSES, EXPECTED_IN_REPORT

D = Discrepancy

# How much memory the run's joins may use (a hash of a million payments fits; with the
# server's default 4 MB it would spill to disk in many batches).
WORK_MEM = "256MB"

DUPLICATES_SQL = """
CREATE TEMP TABLE recon_dups ON COMMIT DROP AS
SELECT psp_reference, min(line_no) AS first_line, count(*) AS occurrences
FROM recon_parsed GROUP BY psp_reference HAVING count(*) > 1
"""

CLASSIFY_SQL = """
CREATE TEMP TABLE recon_result ON COMMIT DROP AS
SELECT l.line_no, l.psp_reference, COALESCE(a.id, b.id) AS payment_id,
       COALESCE(d.occurrences, 1) AS occurrences,
       CASE WHEN d.first_line < l.line_no THEN 'duplicate'
            WHEN a.id IS NULL AND b.id IS NULL THEN 'missing_ours'
            WHEN COALESCE(a.currency_id, b.currency_id) <> l.currency THEN 'currency_mismatch'
            WHEN COALESCE(a.amount, b.amount) <> l.amount THEN 'amount_mismatch'
            WHEN agree.ours IS NULL THEN 'status_mismatch'
            ELSE 'matched'
       END AS class
FROM recon_parsed l
LEFT JOIN recon_dups d ON d.psp_reference = l.psp_reference
LEFT JOIN payments_payment a ON a.psp_id = %(psp)s AND a.psp_reference = l.psp_reference
LEFT JOIN payments_payment b
       ON a.id IS NULL AND b.psp_id = %(psp)s AND b.status = 'sent_to_psp'
      AND b.psp_reference IS NULL AND b.reference = l.merchant_reference
LEFT JOIN unnest(%(agree_kinds)s::text[], %(agree_reported)s::text[],
                 %(agree_ours)s::text[]) AS agree(kind, reported, ours)
       ON agree.kind = l.kind AND agree.reported = l.status
      AND COALESCE(a.kind, b.kind) = l.kind AND agree.ours = COALESCE(a.status, b.status)
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

# Every break found, one row per exception key (duplicates: one per reference), with both
# sides: the report's line and our payment.
FOUND_SQL = """
SELECT r.class AS kind, r.psp_reference AS match_key, r.payment_id, r.psp_reference,
       COALESCE(l.merchant_reference, '') AS merchant_reference, l.line_no,
       r.occurrences AS line_count, l.kind AS psp_kind, l.amount AS psp_amount,
       l.currency AS psp_currency, l.status AS psp_status,
       l.occurred_at AS psp_occurred_at,
       p.amount AS our_amount, COALESCE(p.currency_id, '') AS our_currency,
       COALESCE(p.status, '') AS our_status
FROM (
    SELECT * FROM recon_result WHERE class NOT IN ('matched', 'duplicate')
    UNION ALL
    (SELECT DISTINCT ON (psp_reference) * FROM recon_result WHERE class = 'duplicate'
     ORDER BY psp_reference, line_no)
) AS r
JOIN recon_parsed l ON l.line_no = r.line_no
LEFT JOIN payments_payment p ON p.id = r.payment_id
UNION ALL
SELECT 'missing_psp', COALESCE(psp_reference, reference), payment_id,
       COALESCE(psp_reference, ''), reference, NULL, 0, '', NULL, '', '', NULL,
       amount, currency_id, status
FROM recon_missing
"""


def _period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def classify(cursor, *, psp_id: int, period_start: date, period_end: date) -> dict[str, int]:
    """Classify the staged lines and the period's payments; returns the count per class."""
    agree = [(k, r, o) for (k, r), ours in AGREEING_STATUSES.items() for o in ours]
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    cursor.execute(DUPLICATES_SQL)
    cursor.execute(
        CLASSIFY_SQL,
        {
            "psp": psp_id,
            "agree_kinds": [a[0] for a in agree],
            "agree_reported": [str(a[1]) for a in agree],
            "agree_ours": [str(a[2]) for a in agree],
        },
    )
    # Fresh temporary tables have no statistics: without them the planner may take the
    # anti-join below for a nested loop over hundreds of thousands of rows each way.
    cursor.execute("ANALYZE recon_result")
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
    counts = dict.fromkeys(D.values, 0)
    cursor.execute("SELECT class, count(*) FROM recon_result GROUP BY class")
    counts.update(dict(cursor.fetchall()))
    cursor.execute("SELECT count(*) FROM recon_missing")
    counts[D.MISSING_PSP] = cursor.fetchone()[0]
    return counts


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
    cursor.execute(
        f"""
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
            FROM ({FOUND_SQL}) AS found
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
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM payments_reconciliationexception "
        "WHERE psp_id = %s AND status = 'open')",
        [psp_id],
    )
    # Clearing compares the open breaks with every matched line: skip it when none is open.
    open_breaks = cursor.fetchone()[0]
    cursor.execute(
        """
        CREATE TEMP TABLE recon_cleared ON COMMIT DROP AS
        WITH cleared AS (
            UPDATE payments_reconciliationexception e
               SET status = 'cleared', resolved_at = now(),
                   resolution_note = 'Matched in report #' || %(report)s || '.'
             WHERE %(open)s AND e.psp_id = %(psp)s AND e.status = 'open'
               AND e.kind <> 'duplicate'
               AND (e.match_key IN (SELECT psp_reference FROM recon_result
                                     WHERE class = 'matched')
                    OR e.payment_id IN (SELECT payment_id FROM recon_result
                                         WHERE class = 'matched'))
            RETURNING e.id
        )
        SELECT * FROM cleared
        """,
        {"psp": psp_id, "report": report_id, "open": open_breaks},
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
