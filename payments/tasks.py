"""Celery tasks of the payments app. Each takes ids, calls a service, and is safe to run twice.

`enqueue_*` are what `transaction.on_commit` calls: they never raise, because the thing they
announce is already safe in the database (an inbox row, an approved withdrawal) and the beat
sweepers pick up whatever a broker outage left behind.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .models import PaymentStatus, Withdrawal
from .reconciliation.tasks import reconcile_report  # noqa: F401  (registered for the workers)
from .services.payments import do_send_payout
from .services.psp_events import do_apply_psp_event, process_pending_events

logger = logging.getLogger(__name__)

SWEEP_AFTER = timedelta(seconds=30)
PAYOUT_SWEEP_AFTER = timedelta(minutes=2)
# A web process publishes at most one "drain the inbox" task per window; see enqueue_event.
DRAIN_WINDOW_SECONDS = 0.2
DRAIN_LIMIT = 20_000


@shared_task(name="payments.apply_psp_event", ignore_result=True)
def apply_psp_event(inbox_id: int) -> str | None:
    """One inbox row (what intake published before the debounced drain; kept for messages
    still queued, and for the inline mode of the tests)."""
    return do_apply_psp_event(inbox_id)


@shared_task(name="payments.drain_psp_inbox", ignore_result=True)
def drain_psp_inbox(published_at: float | None = None) -> dict:
    """Apply every pending inbox row, in batches, until none is left.

    A web process that stored a row less than DRAIN_WINDOW_SECONDS after it published this
    task does not publish another: it relies on this one. So once the inbox looks empty, the
    task looks once more after `published_at` + the window (and a margin): every row whose
    publish was skipped had committed by then. Rows another worker holds are skipped (SKIP
    LOCKED), and errored rows wait for the sweeper's retries.
    """
    deadline = (published_at or 0.0) + DRAIN_WINDOW_SECONDS + 0.05
    late = time.time() >= deadline  # every row it stands for had committed before this pass
    counts = process_pending_events(limit=DRAIN_LIMIT, retry_errors=False)
    if not late and sum(counts.values()) < DRAIN_LIMIT:
        wait = deadline - time.time()
        if wait > 0:
            time.sleep(min(wait, DRAIN_WINDOW_SECONDS + 0.05))
        counts.update(process_pending_events(limit=DRAIN_LIMIT, retry_errors=False))
    if sum(counts.values()) >= DRAIN_LIMIT:  # more may be waiting: hand over to a fresh task
        _enqueue(drain_psp_inbox, time.time())
    return dict(counts)


@shared_task(name="payments.sweep_psp_inbox", ignore_result=True)
def sweep_psp_inbox(limit: int = 5000) -> dict:
    """Apply inbox rows nobody applied within SWEEP_AFTER (broker was down, worker died)."""
    counts = process_pending_events(older_than=SWEEP_AFTER, limit=limit)
    if counts:
        logger.info("PSP inbox sweep: %s", dict(counts))
    return dict(counts)


@shared_task(name="payments.send_payout", ignore_result=True)
def send_payout(withdrawal_id: int) -> None:
    do_send_payout(withdrawal_id)


@shared_task(name="payments.sweep_approved_withdrawals", ignore_result=True)
def sweep_approved_withdrawals(limit: int = 500) -> int:
    """Send approved withdrawals whose payout task never ran."""
    cutoff = timezone.now() - PAYOUT_SWEEP_AFTER
    ids = list(
        Withdrawal.objects.filter(status=PaymentStatus.APPROVED, status_changed_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    for withdrawal_id in ids:
        do_send_payout(withdrawal_id)
    return len(ids)


def _enqueue(task, *args) -> bool:
    """Publish without Celery's connection retries (several seconds when Redis is down): a
    pooled connection either works now or the work waits in the database for the sweeper."""
    if task.app.conf.task_always_eager:  # inline (tests, no broker): let errors surface
        task.apply_async(args)
        return True
    try:
        with task.app.pool.acquire(block=True, timeout=2) as conn:
            conn.ensure_connection(max_retries=0)
            task.apply_async(args, connection=conn, retry=False)
        return True
    except Exception as exc:  # broker down: the sweeper will find the work in the database
        logger.warning("Could not enqueue %s%s: %s", task.name, args, exc)
        return False


_last_drain_published = 0.0


def enqueue_event(inbox_id: int) -> bool:
    """After an inbox row commits: have a worker apply it soon.

    Publishes a `drain_psp_inbox` task, but at most one per DRAIN_WINDOW_SECONDS per process
    (a Redis round trip per delivery would cost more than storing it); the drain task looks
    again after the window, so a row whose publish was skipped is applied all the same. Inline
    (tests, no broker) the row is applied at once.
    """
    global _last_drain_published
    if apply_psp_event.app.conf.task_always_eager:
        return _enqueue(apply_psp_event, inbox_id)
    now = time.time()
    if now - _last_drain_published < DRAIN_WINDOW_SECONDS:
        return True
    published = _enqueue(drain_psp_inbox, now)
    if published:
        _last_drain_published = now
    return published


def enqueue_payout(withdrawal_id: int) -> bool:
    return _enqueue(send_payout, withdrawal_id)
