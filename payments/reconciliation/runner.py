"""Running one settlement report: import, classify, record, in one transaction.

    1. Claim the run (committed at once): status running, `runs` + 1.
    2. One transaction, holding the report's row lock: COPY the file into staging, check and
       classify every line in one pass, upsert the exceptions, store the counts, status done.
       A bad file rolls all of it back and the report is marked rejected with its line
       errors; any other failure rolls it back and marks it failed.

A worker killed in step 2 leaves the report running with nothing applied; the redelivered
task (or a re-run by staff) starts again from step 1 and ends with the same result, because
the exceptions are unique per PSP, class and reference. A second worker handed the same report
waits on the row lock and finds it done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from ..exceptions import ReportRejected
from ..models import SettlementReport
from . import importer, matcher
from .formats import format_for

logger = logging.getLogger(__name__)

R = SettlementReport.Status

# How far through the run each phase starts (the progress bar's percent).
PHASES = {"Reading the file": (0, 60), "Checking every line": (60, 70),
          "Matching": (70, 85), "Recording exceptions": (85, 100)}  # fmt: skip
PROGRESS_TTL = 6 * 3600
# The staging tables drop at commit; dropping them as soon as the run is done frees them at
# once (and lets a caller run several reports in one transaction, as the tests do).
DROP_STAGING = (
    "DROP VIEW IF EXISTS recon_lines; DROP TABLE IF EXISTS recon_raw, recon_fields, "
    "recon_dups, recon_result, recon_missing, recon_found, recon_upserted, recon_cleared"
)


def progress_key(report_id: int) -> str:
    # The database's name keeps two installs (or test workers) sharing a cache apart.
    return f"payments:reconciliation:{connection.settings_dict['NAME']}:{report_id}:progress"


def read_progress(report_id: int) -> dict | None:
    """{"phase", "percent"} of a running report, or None."""
    return cache.get(progress_key(report_id))


def _reporter(report_id: int, echo: Callable[[str, int], None] | None):
    last = {"percent": -1, "phase": ""}

    def report(phase: str, fraction: float) -> None:
        start, end = PHASES[phase]
        percent = int(start + (end - start) * max(0.0, min(fraction, 1.0)))
        if percent == last["percent"] and phase == last["phase"]:
            return
        last.update(percent=percent, phase=phase)
        cache.set(progress_key(report_id), {"phase": phase, "percent": percent}, PROGRESS_TTL)
        if echo:
            echo(phase, percent)

    return report


def _claim(report_id: int) -> bool:
    with transaction.atomic():
        report = SettlementReport.objects.select_for_update().get(pk=report_id)
        if report.status in (R.DONE, R.REJECTED):
            return False
        report.status = R.RUNNING
        report.runs += 1
        report.started_at = timezone.now()
        report.finished_at = None
        report.failure = ""
        report._change_reason = f"run {report.runs} started"
        report.save(update_fields=["status", "runs", "started_at", "finished_at", "failure"])
    return True


def _finish(report_id: int, status: str, reason: str, **fields) -> SettlementReport:
    with transaction.atomic():
        report = SettlementReport.objects.select_for_update().get(pk=report_id)
        report.status = status
        report.finished_at = timezone.now()
        for name, value in fields.items():
            setattr(report, name, value)
        report._change_reason = reason
        report.save(update_fields=["status", "finished_at", *fields])
    return report


def run_report(
    report_id: int, *, echo: Callable[[str, int], None] | None = None
) -> SettlementReport:
    """Reconcile one report (see the module's docstring). Safe to run twice."""
    if not _claim(report_id):
        return SettlementReport.objects.get(pk=report_id)
    progress = _reporter(report_id, echo)
    try:
        with transaction.atomic():
            report = (
                SettlementReport.objects.select_for_update(of=("self",))
                .select_related("psp")
                .get(pk=report_id)
            )
            if report.status != R.RUNNING:  # another worker finished it while we waited
                return report
            fmt = format_for(report.psp.adapter)
            with report.file.open("rb") as stream, connection.cursor() as cursor:
                staged = importer.stage_lines(cursor, stream, report.size, fmt, progress)
                progress("Checking every line", 0.0)
                lines = matcher.classify_lines(cursor, staged, psp_id=report.psp_id)
                importer.reject_bad_lines(cursor, staged, lines.error_count, lines.count)
                start = report.period_start or lines.first_day
                end = report.period_end or lines.last_day
                progress("Matching", 0.0)
                counts = matcher.find_missing(
                    cursor, lines, psp_id=report.psp_id, period_start=start, period_end=end
                )
                progress("Recording exceptions", 0.0)
                outcome = matcher.record_exceptions(
                    cursor, report_id=report.pk, psp_id=report.psp_id, brand_id=report.brand_id
                )
                cursor.execute(DROP_STAGING)
            progress("Recording exceptions", 1.0)
            report.status = R.DONE
            report.line_count = lines.count
            report.period_start, report.period_end = start, end
            report.counts = counts
            report.errors, report.error_count = [], 0
            report.finished_at = timezone.now()
            report._change_reason = (
                f"run {report.runs}: {outcome['new']} new exceptions, "
                f"{outcome['seen_again']} seen again, {outcome['cleared']} cleared"
            )
            report.save()
    except ReportRejected as exc:
        errors = [{"line": line, "reason": reason} for line, reason in exc.errors]
        return _finish(report_id, R.REJECTED, str(exc)[:300], errors=errors,
                       error_count=exc.total, counts={}, line_count=0)  # fmt: skip
    except Exception as exc:
        logger.exception("Reconciliation of report %s failed", report_id)
        return _finish(report_id, R.FAILED, "failed", failure=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        cache.delete(progress_key(report_id))
    return report
