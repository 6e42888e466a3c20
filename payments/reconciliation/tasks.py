"""The reconciliation job. Registered with Celery through `payments.tasks`."""

from __future__ import annotations

import logging

from celery import shared_task

from .runner import run_report

logger = logging.getLogger(__name__)


@shared_task(name="payments.reconcile_report", ignore_result=True, acks_late=True)
def reconcile_report(report_id: int) -> str:
    """Run one settlement report; safe to run twice (a finished report is left as it is)."""
    return run_report(report_id).status


def enqueue_report(report_id: int) -> bool:
    """Called on commit; never raises (the report stays queued and can be re-run)."""
    try:
        reconcile_report.apply_async((report_id,), retry=False)
        return True
    except Exception as exc:  # broker down: staff see it queued and can run it again
        logger.warning("Could not enqueue reconciliation of report %s: %s", report_id, exc)
        return False
