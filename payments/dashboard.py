"""Home-page counters for the payments team."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from backoffice.dashboard import QueueCounter, register_counter
from backoffice.views_base import bounded_count

from .models import PaymentStatus, PspInboxEvent
from .selectors import UNCONFIRMED_AFTER, payments_for


def _callback_errors(user) -> int:
    qs = PspInboxEvent.objects.restrict(user).filter(status=PspInboxEvent.Status.ERROR)
    return bounded_count(qs, 999)[0]


def _unconfirmed_payouts(user) -> int:
    cutoff = timezone.now() - UNCONFIRMED_AFTER
    qs = payments_for(user).filter(
        kind="withdrawal", status=PaymentStatus.SENT_TO_PSP, status_changed_at__lt=cutoff
    )
    return bounded_count(qs, 999)[0]


def _stuck_deposits(user) -> int:
    cutoff = timezone.now() - timedelta(hours=1)
    qs = payments_for(user).filter(
        kind="deposit", status=PaymentStatus.AUTHORISED, status_changed_at__lt=cutoff
    )
    return bounded_count(qs, 999)[0]


register_counter(
    QueueCounter(
        key="payments.callback_errors",
        label="PSP callbacks in error",
        permission="payments.view_pspinboxevent",
        count=_callback_errors,
        url_name="payments:event_list",
        query="status=error",
        help="Callbacks that failed to apply; they are retried, then wait for someone to look.",
        order=40,
    )
)
register_counter(
    QueueCounter(
        key="payments.unconfirmed_payouts",
        label="Payouts the PSP has not confirmed",
        permission="payments.approve_withdrawal",
        count=_unconfirmed_payouts,
        url_name="payments:transaction_list",
        query="kind=withdrawal&status=sent_to_psp",
        help="Sent more than 24 h ago with no outcome: check with the PSP or reconciliation.",
        order=41,
    )
)
register_counter(
    QueueCounter(
        key="payments.authorised_not_captured",
        label="Deposits authorised but not captured",
        permission="payments.view_deposit",
        count=_stuck_deposits,
        url_name="payments:transaction_list",
        query="kind=deposit&status=authorised",
        help="Authorised over an hour ago and never captured: the money is reserved, not taken.",
        order=42,
    )
)

# The withdrawal queue's and reconciliation's counters live with their pages.
from . import views_queue, views_reconciliation  # noqa: E402, F401
