"""PSP webhooks: verify and store (intake), then apply (exactly once in effect, any order).

Intake (`do_receive_psp_webhook`) verifies the signature against a cached copy of the PSP,
stores the raw delivery in the inbox with `ON CONFLICT (psp, event_id) DO NOTHING` (one
statement, which also checks the cached keys are still current) and, after commit, wakes a
worker (`tasks.enqueue_event`: at most one "drain the inbox" task per process and 0.2 s). If
Celery's broker is down the row is stored all the same; the sweeper applies it later.

Application claims rows with `FOR UPDATE SKIP LOCKED`: in batches (`process_pending_events`,
set-based in `psp_batch.apply_batch`) or one (`do_apply_psp_event`). Either way it locks the
payment, and moves it to *the furthest state the PSP has told us about*: a "captured" that
arrives before its "authorised" passes through authorised on the way (recorded as implied), and
the late "authorised" then changes nothing. Every ledger posting is keyed by payment and
status, so no status is ever booked twice. Only contradictions (a "declined" for a deposit
already captured) are left for a human, marked ignored with the reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from players.models import Player

from ..exceptions import EventNotApplicable, PaymentsError, WebhookRejected
from ..models import (
    Deposit,
    Payment,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    PaymentTransition,
    Psp,
    PspInboxEvent,
    PspWebhookRejection,
)
from ..psp.base import PspEvent
from ..psp.registry import get_adapter
from .payments import Step, _new_payment, advance, check_can_deposit

logger = logging.getLogger(__name__)

S = PaymentStatus
Actor = PaymentTransition.Actor
Reason = PspWebhookRejection.Reason

MAX_BODY_BYTES = 64 * 1024
MAX_ATTEMPTS = 5

REJECTION_STATUS = {
    Reason.UNKNOWN_PSP: 404,
    Reason.MISSING_SIGNATURE: 401,
    Reason.BAD_SIGNATURE: 401,
    Reason.STALE: 401,
    Reason.MALFORMED: 400,
    Reason.TOO_LARGE: 413,
}


@dataclass(frozen=True)
class IntakeResult:
    status_code: int
    outcome: str  # "accepted", "duplicate" or a rejection reason
    inbox_id: int | None = None


# -- intake ---------------------------------------------------------------------------------


def do_receive_psp_webhook(
    psp_code: str,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    remote_addr: str | None = None,
) -> IntakeResult:
    """Verify, store, enqueue. Never applies the event itself, so it answers in milliseconds.

    A rejected delivery is recorded (`PspWebhookRejection`) and answered 4xx; a stored one is
    answered 200; a duplicate (same PSP event id) is answered 200 and changes nothing.

    One statement per accepted delivery: the PSP comes from a per-process cache, and the insert
    itself checks that the cached adapter, brand and signing keys are still the database's
    (a key rotated or revoked in another process is seen at once, never after a delay).
    """
    cached = psp_code in _PSPS
    psp = _cached_psp(psp_code)
    for _ in range(3):
        if psp is None:
            return _reject(None, psp_code, Reason.UNKNOWN_PSP, "", headers, body, remote_addr)
        adapter = get_adapter(psp.adapter)
        try:
            if len(body) > MAX_BODY_BYTES:
                raise WebhookRejected(Reason.TOO_LARGE, f"{len(body)} bytes.")
            adapter.verify(
                psp, method=method, path=path, headers=headers, body=body, now=time.time()
            )
            envelope = adapter.envelope(body)
        except WebhookRejected as exc:
            if cached:  # refused by a cached copy: the keys may have just changed, re-read
                cached, psp = False, _cached_psp(psp_code, fresh=True)
                continue
            return _reject(psp, psp_code, exc.reason, exc.detail, headers, body, remote_addr)
        kept = {h: headers.get(h, "") for h in adapter.stored_headers}
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT_SQL,
                [
                    psp.adapter,
                    psp.brand_id,
                    json.dumps(psp.signing_keys or {}),
                    psp.pk,
                    psp.pk,
                    psp.brand_id,
                    envelope.event_id,
                    envelope.event_type,
                    envelope.psp_reference,
                    timezone.now(),
                    json.dumps(kept),
                    body.decode("utf-8", errors="replace"),
                ],
            )
            same, inbox_id = cursor.fetchone()
        if not same:  # the PSP changed (or went) since we cached it: verify again, fresh
            cached, psp = False, _cached_psp(psp_code, fresh=True)
            continue
        if inbox_id is None:
            return IntakeResult(200, "duplicate")
        from ..tasks import enqueue_event

        transaction.on_commit(partial(enqueue_event, inbox_id))
        return IntakeResult(200, "accepted", inbox_id)
    raise RuntimeError(f"PSP {psp_code} changed twice during one delivery.")  # pragma: no cover


_INBOX = PspInboxEvent._meta.db_table
_PSP = Psp._meta.db_table
# Insert only if the PSP is still as cached, and say which happened: (same, new id or NULL).
_INSERT_SQL = (
    f"WITH psp AS (SELECT adapter = %s AND brand_id = %s AND signing_keys = %s::jsonb AS same "
    f"FROM {_PSP} WHERE id = %s), "
    f"ins AS (INSERT INTO {_INBOX} (psp_id, brand_id, event_id, event_type, psp_reference, "
    f"received_at, headers, body, status, attempts, result) "
    f"SELECT %s, %s, %s, %s, %s, %s::timestamptz, %s::jsonb, %s, 'pending', 0, '' "
    f"WHERE (SELECT same FROM psp) ON CONFLICT (psp_id, event_id) DO NOTHING RETURNING id) "
    f"SELECT COALESCE((SELECT same FROM psp), false), (SELECT id FROM ins)"
)

# code -> Psp, per process. Saves a query per delivery; `do_receive_psp_webhook` checks the
# cached copy against the database in its insert, and a save in this process drops it.
_PSPS: dict[str, Psp] = {}


def _cached_psp(code: str, *, fresh: bool = False) -> Psp | None:
    psp = None if fresh else _PSPS.get(code)
    if psp is None:
        psp = (
            Psp.objects.filter(code=code)
            .only("id", "code", "name", "brand_id", "adapter", "signing_keys")
            .first()
        )
        if psp is None:
            _PSPS.pop(code, None)
        else:
            _PSPS[code] = psp
    return psp


def _forget_psps(sender, **kwargs) -> None:
    _PSPS.clear()


post_save.connect(_forget_psps, sender=Psp, dispatch_uid="payments.psp_events.forget_psps")
post_delete.connect(_forget_psps, sender=Psp, dispatch_uid="payments.psp_events.forget_psps_d")


def _reject(psp, psp_code, reason, detail, headers, body, remote_addr) -> IntakeResult:
    keep = {
        k: v[:300]
        for k, v in headers.items()
        if k.lower().startswith(("x-", "cardpay", "content-type", "user-agent"))
    }
    PspWebhookRejection.objects.create(
        psp=psp,
        brand_id=getattr(psp, "brand_id", None),
        psp_code=psp_code[:40],
        reason=reason,
        detail=detail[:300],
        remote_addr=remote_addr,
        headers=keep,
        # PostgreSQL text cannot hold NUL: a hostile body must not turn a 4xx into a 500
        body_excerpt=body[:2000].decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
    )
    logger.warning("Rejected webhook for %s: %s %s", psp_code, reason, detail)
    return IntakeResult(REJECTION_STATUS[reason], str(reason))


# -- application ----------------------------------------------------------------------------

BATCH_SIZE = 500


def do_apply_psp_event(inbox_id: int) -> str | None:
    """Apply one stored event; returns its new status, or None when another worker holds it or
    it was already applied. Safe to call any number of times, from any number of workers."""
    with transaction.atomic():
        row = (
            PspInboxEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("psp")
            .filter(pk=inbox_id)
            .filter(Q(status=PspInboxEvent.Status.PENDING) | Q(status=PspInboxEvent.Status.ERROR))
            .first()
        )
        if row is None:
            return None
        return _apply_row(row)


def process_pending_events(
    *,
    older_than: timedelta | None = None,
    limit: int | None = None,
    retry_errors: bool = True,
    batch_size: int = BATCH_SIZE,
) -> Counter:
    """Apply pending rows (and, with `retry_errors`, errored rows with attempts left) in
    batches of `batch_size`, one transaction per batch, claiming them with `FOR UPDATE SKIP
    LOCKED` so several workers, sweepers and tasks never collide. What the drain task, the
    beat sweeper and `manage.py process_psp_inbox` run.

    Each batch is applied set-based (`apply_batch`); an event it cannot take that way, or a
    batch that fails, is applied row by row, each in its own savepoint, so one bad event is
    marked with its error and never blocks the others.
    """
    from .psp_batch import apply_batch

    counts: Counter = Counter()
    last_id = 0
    done = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        unprocessed = Q(status=PspInboxEvent.Status.PENDING)
        if retry_errors:
            unprocessed |= Q(status=PspInboxEvent.Status.ERROR, attempts__lt=MAX_ATTEMPTS)
        with transaction.atomic():
            qs = (
                PspInboxEvent.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(unprocessed, id__gt=last_id)
                .order_by("id")
            )
            if older_than is not None:
                qs = qs.filter(received_at__lt=timezone.now() - older_than)
            rows = list(qs[:size])
            if not rows:
                break
            last_id = rows[-1].pk
            counts.update(apply_batch(rows))
            done += len(rows)
    return counts


def _apply_row(row: PspInboxEvent) -> str:
    adapter = get_adapter(row.psp.adapter)
    payment = None
    try:
        event = adapter.parse(row.body.encode())
        payment, message, changed = apply_event(row.psp, event, row)  # in its own savepoint
        status = PspInboxEvent.Status.APPLIED if changed else PspInboxEvent.Status.IGNORED
    except EventNotApplicable as exc:
        payment, message, status = exc.payment, str(exc), PspInboxEvent.Status.IGNORED
    except PaymentsError as exc:
        message, status = f"{type(exc).__name__}: {exc}", PspInboxEvent.Status.ERROR
    except Exception as exc:  # a bug or a database error: keep the row for a retry
        logger.exception("Applying PSP event %s failed", row.pk)
        message, status = f"{type(exc).__name__}: {exc}", PspInboxEvent.Status.ERROR
    row.status = status
    row.result = message[:500]
    row.attempts += 1
    row.processed_at = timezone.now()
    row.payment = payment if payment is not None and payment.pk else row.payment
    row.save(update_fields=["status", "result", "attempts", "processed_at", "payment"])
    return status


@transaction.atomic
def apply_event(psp: Psp, event: PspEvent, inbox: PspInboxEvent | None):
    """Apply a parsed event; returns (payment, message, changed). Raises EventNotApplicable
    (and writes nothing) when the event cannot apply."""
    if event.payment_kind == PaymentKind.DEPOSIT:
        payment = _locate(psp, event, PaymentKind.DEPOSIT)
        if payment is None:
            _check_creatable(psp, event)
            payment, refused = _create_deposit(psp, event, inbox)
            if refused:
                return payment, refused, True
    else:
        payment = _locate(psp, event, PaymentKind.WITHDRAWAL)
        if payment is None:
            raise EventNotApplicable(
                f"No withdrawal {event.merchant_reference or event.psp_reference} at {psp.name}."
            )
    steps = plan_event(payment, event)
    if not steps:
        return payment, _no_change(payment, event), False
    advance(payment, steps, psp_event=inbox)
    return payment, f"{' → '.join(s.to_status for s in steps)}", True


def plan_event(payment: Payment, event: PspEvent) -> list[Step]:
    """The steps `event` brings to `payment` (a locked row, or its state in a batch), with the
    PSP's reason on the step it names; notes the PSP reference and reason on the payment when
    there are steps. Raises EventNotApplicable; writes nothing."""
    if payment.kind == PaymentKind.DEPOSIT:
        steps = deposit_path(payment.status, event.status, event_type=event.event_type)
    else:
        steps = payout_path(payment.status, event.status, event_type=event.event_type)
    _check_amount(payment, event)
    if event.reason:
        steps = [
            Step(s.to_status, s.actor_kind, event.reason[:40], s.note)
            if s.to_status == event.status
            else s
            for s in steps
        ]
    if steps:
        if event.psp_reference and not payment.psp_reference:
            payment.psp_reference = event.psp_reference
        if event.reason:
            payment.psp_note = f"{event.event_type}: {event.reason}"[:300]
    return steps


def _no_change(payment: Payment, event: PspEvent) -> str:
    what = S(event.status).label.lower() if event.status else event.event_type
    return f"No change: already {payment.get_status_display().lower()} ({what})."


def _check_creatable(psp: Psp, event: PspEvent) -> None:
    """Raise EventNotApplicable unless `event` may create the deposit it is about."""
    if not event.status:
        raise EventNotApplicable(f"Informational {event.event_type} for an unknown payment.")
    if event.merchant_reference:
        raise EventNotApplicable(f"No deposit {event.merchant_reference} at {psp.name}.")


def _locate(psp: Psp, event: PspEvent, kind: str) -> Payment | None:
    qs = (
        Payment.objects.select_for_update(of=("self",))
        .select_related("psp", "player")
        .filter(psp=psp, kind=kind)
    )
    payment = None
    if event.merchant_reference:
        payment = qs.filter(reference=event.merchant_reference).first()
    if payment is None and event.psp_reference:
        payment = qs.filter(psp_reference=event.psp_reference).first()
    return payment


def _check_amount(payment: Payment, event: PspEvent) -> None:
    if event.currency and event.currency != payment.currency_id:
        raise EventNotApplicable(
            f"Currency mismatch: the PSP says {event.currency}, we have {payment.currency_id}.",
            payment=payment,
        )
    if event.amount is not None and event.amount != payment.amount:
        raise EventNotApplicable(
            f"Amount mismatch: the PSP says {event.amount}, we have {payment.amount}.",
            payment=payment,
        )


def _deposit_inputs(psp: Psp, event: PspEvent, player, methods) -> PaymentMethod:
    """Check what a deposit started at the PSP needs (`player` found, or None; `methods` the
    PSP's methods for the event's kind and currency, in any order) and return its method."""
    if player is None:
        raise EventNotApplicable(f"No player {event.player_ref!r} on {psp.name}'s brand.")
    if not event.currency or event.amount is None or event.amount <= 0:
        raise EventNotApplicable("The event has no usable amount and currency.")
    fitting = [m for m in methods if m.country in (event.country, "")]
    if not fitting:
        raise EventNotApplicable(
            f"{psp.name} has no {event.method} method for {event.currency} in {event.country}."
        )
    return max(fitting, key=lambda m: m.country)  # the country's own method first


def _create_deposit(psp: Psp, event: PspEvent, inbox) -> tuple[Payment, str]:
    """A deposit that started at the PSP: create it from the event (the first to arrive, in
    whatever order). Returns (deposit, refusal message or "")."""
    player = Player.objects.filter(brand_id=psp.brand_id, external_ref=event.player_ref).first()
    methods = list(
        PaymentMethod.objects.filter(psp=psp, kind=event.method, currency_id=event.currency)
        .filter(Q(country=event.country) | Q(country=""))
        .select_related("psp")
    )
    method = _deposit_inputs(psp, event, player, methods)
    try:
        with transaction.atomic():
            deposit = _new_payment(
                Deposit,
                player,
                method,
                event.amount,
                status=S.INITIATED,
                instrument=event.instrument,
                fingerprint=event.instrument_fingerprint,
                psp_reference=event.psp_reference,
                psp_event=inbox,
                actor_kind=Actor.PSP,
                acting_user=None,
            )
    except IntegrityError:
        # Another event about the same payment created it first; use theirs.
        deposit = _locate(psp, event, PaymentKind.DEPOSIT)
        if deposit is None:
            raise
        return deposit, ""
    try:
        check_can_deposit(player)
    except PaymentsError as exc:
        advance(deposit, [Step(S.FAILED, Actor.SYSTEM, exc.code, str(exc))], psp_event=inbox)
        return deposit, f"Refused: {exc}"
    return deposit, ""


# -- paths: the pure part, tested on its own ------------------------------------------------

DEPOSIT_FORWARD = [S.INITIATED, S.AUTHORISED, S.CAPTURED, S.CREDITED]
DEPOSIT_AFTER_CREDIT = (S.REFUNDED, S.REVERSED, S.CHARGED_BACK)
DEPOSIT_FAILED = (S.FAILED, S.EXPIRED)


def deposit_path(current: str, target: str, *, event_type: str = "") -> list[Step]:
    """The steps from `current` to the state a PSP event says a deposit reached.

    [] means nothing to do (already there, or further along); `EventNotApplicable` means the
    event contradicts what we know (failed after captured, refunded after charged back).
    """
    implied = f"implied by {event_type}" if event_type else "implied"
    if not target:
        return []
    if current == target:
        return []
    if target in DEPOSIT_FORWARD:
        if current in DEPOSIT_FORWARD:
            here, there = DEPOSIT_FORWARD.index(current), DEPOSIT_FORWARD.index(target)
            if there <= here:
                return []
            steps = [
                Step(s, Actor.PSP, note="" if s == target else implied)
                for s in DEPOSIT_FORWARD[here + 1 : there + 1]
                if s != S.CREDITED
            ]
            if target == S.CAPTURED or target == S.CREDITED:
                steps.append(Step(S.CREDITED, Actor.SYSTEM))
            return steps
        if current in DEPOSIT_AFTER_CREDIT:
            return []  # a late event about how it got there
        raise EventNotApplicable(f"The deposit already {current}; {target} contradicts it.")
    if target in DEPOSIT_FAILED:
        if current in (S.INITIATED, S.AUTHORISED):
            return [Step(target, Actor.PSP)]
        raise EventNotApplicable(f"The deposit is already {current}; a {target} cannot apply.")
    if target in DEPOSIT_AFTER_CREDIT:
        if current in DEPOSIT_FORWARD:
            steps = deposit_path(current, S.CREDITED, event_type=event_type)
            steps = [
                Step(s.to_status, s.actor_kind, s.reason_code, s.note or implied) for s in steps
            ]
            return [*steps, Step(target, Actor.PSP)]
        raise EventNotApplicable(f"The deposit is already {current}; {target} contradicts it.")
    raise EventNotApplicable(f"{target} is not a deposit status.")


def payout_path(current: str, target: str, *, event_type: str = "") -> list[Step]:
    """The steps from `current` to the payout outcome a PSP event reports."""
    if not target or current == target:
        return []
    if target not in (S.PAID, S.FAILED):
        raise EventNotApplicable(f"{target} is not a payout outcome.")
    if current == S.APPROVED:
        note = f"implied by {event_type}" if event_type else "implied"
        return [Step(S.SENT_TO_PSP, Actor.PSP, note=note), Step(target, Actor.PSP)]
    if current == S.SENT_TO_PSP:
        return [Step(target, Actor.PSP)]
    raise EventNotApplicable(f"The withdrawal is {current}; a payout {target} cannot apply.")
