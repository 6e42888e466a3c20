"""`manage.py reconcile <psp_code> <file> [--json]`: reconcile a PSP settlement report and
print the count of each class.

The run happens in this process (the same code the Celery job runs), with its progress on
stderr; the command returns when it is finished. The same file for the same PSP is the same
report: running the command again re-runs it, which changes nothing if nothing changed on our
side. A malformed file is rejected whole: the command lists the lines and reasons and exits 1.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.exceptions import PaymentsError
from payments.models import Discrepancy, Psp, SettlementReport
from payments.reconciliation.runner import run_report
from payments.services.reconciliation import (
    do_rerun_settlement_report,
    do_upload_settlement_report,
)


class Command(BaseCommand):
    help = "Reconcile a PSP settlement report (CSV) against our payments and print the counts."

    def add_arguments(self, parser):
        parser.add_argument("psp_code", help="The PSP's code (as in /webhooks/psp/<code>/).")
        parser.add_argument("file", help="The settlement report, a CSV in the PSP's format.")
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object keyed by class."
        )
        parser.add_argument(
            "--period-start",
            type=date.fromisoformat,
            default=None,
            help="First day of the period (default: the report's first day).",
        )
        parser.add_argument(
            "--period-end",
            type=date.fromisoformat,
            default=None,
            help="Last day of the period (default: the report's last day).",
        )

    def handle(self, *args, psp_code, file, **options):
        as_json = options["json"]
        try:
            psp = Psp.objects.get(code=psp_code)
        except Psp.DoesNotExist:
            raise CommandError(f"No PSP has the code {psp_code!r}.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file} is not a file.")
        try:
            with path.open("rb") as stream:
                report, created = do_upload_settlement_report(
                    psp,
                    stream=stream,
                    name=path.name,
                    acting_user=None,
                    period_start=options["period_start"],
                    period_end=options["period_end"],
                    enqueue=False,
                )
            if not created:
                self.stderr.write(f"Same file as report #{report.pk}: running it again.")
                do_rerun_settlement_report(report.pk, acting_user=None)
        except PaymentsError as exc:
            raise CommandError(str(exc))
        echo = None if as_json else self._echo
        report = run_report(report.pk, echo=echo)
        if report.status == SettlementReport.Status.REJECTED:
            if as_json:
                self.stdout.write(
                    json.dumps({"rejected": report.error_count, "errors": report.errors})
                )
            else:
                for error in report.errors:
                    self.stderr.write(f"line {error['line']}: {error['reason']}")
            raise CommandError(
                f"Report #{report.pk} rejected: {report.error_count} line(s) with errors. "
                "Nothing was imported."
            )
        if report.status != SettlementReport.Status.DONE:
            raise CommandError(f"Report #{report.pk} {report.status}: {report.failure}")
        counts = {c: report.counts.get(c, 0) for c in Discrepancy.values}
        if as_json:
            self.stdout.write(json.dumps(counts))
            return
        self.stdout.write(
            f"Report #{report.pk} ({report.line_count} lines, "
            f"{report.period_start} to {report.period_end}):"
        )
        width = max(len(Discrepancy(c).label) for c in counts)
        for code, count in counts.items():
            self.stdout.write(f"  {Discrepancy(code).label:<{width}}  {count:>9}")

    def _echo(self, phase: str, percent: int) -> None:
        self.stderr.write(f"\r{percent:3d}%  {phase:<24}", ending="")
        if percent >= 100:
            self.stderr.write("")
