"""Deposits and withdrawals: starting them, moving them through their state machines, and the
ledger postings each status brings.

Every status change goes through `advance()`, which checks the whole path against the
transition map first, posts the ledger movements of each status reached (idempotency keys
derived from the payment and the status, so a status can never be booked twice), writes one
`PaymentTransition` row per step, saves the payment once and appends the timeline events.

Which postings a status brings:

    deposit credited          PSP clearing → player cash
    deposit refunded/reversed player cash → PSP clearing (shortfall from chargeback losses
                              when the PSP already took the money back)
    deposit charged back      player cash (what is there) + chargeback losses → PSP clearing
    withdrawal requested      player cash → player locked
    withdrawal paid           player locked → PSP clearing
    withdrawal rejected,
      cancelled or failed     player locked → player cash
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from backoffice.audit import record_event
from backoffice.money import format_money
from backoffice.scoping import check_in_scope
from players.exceptions import RestrictionError
from players.models import Player
from players.services import assert_may_deposit, assert_may_withdraw, do_record_instrument

from ..exceptions import (
    AmountOutOfRange,
    DepositsBlocked,
    InvalidTransition,
    MethodUnavailable,
    PspUnavailable,
    WithdrawalsBlocked,
)
from ..models import (
    Account,
    Deposit,
    LedgerTransaction,
    Payment,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    PaymentTransition,
    Withdrawal,
)
from . import ledger

logger = logging.getLogger(__name__)

S = PaymentStatus
Actor = PaymentTransition.Actor

# Statuses whose money is out of the wallet's reach: refunded, reversed, charged back.
RELEASE_STATUSES = frozenset({S.REJECTED, S.CANCELLED, S.FAILED})


@dataclass(frozen=True)
class Step:
    """One status change in a path: to where, by whom, and why."""

    to_status: str
    actor_kind: str
    reason_code: str = ""
    note: str = ""


# -- rules ----------------------------------------------------------------------------------


def check_can_deposit(player: Player) -> None:
    """Raise `DepositsBlocked` unless the player may deposit now (active, not blocked).

    The rule lives in the players app (`assert_may_deposit`), which reads the committed row
    FOR SHARE, so a restriction switched on concurrently cannot let this deposit through.
    """
    try:
        assert_may_deposit(player)
    except RestrictionError as exc:
        raise DepositsBlocked(str(exc))


def check_can_withdraw(player: Player) -> None:
    """Raise `WithdrawalsBlocked` unless the player may withdraw now. Self-excluded and closed
    accounts may still take their money out; suspended or blocked ones may not."""
    try:
        assert_may_withdraw(player)
    except RestrictionError as exc:
        raise WithdrawalsBlocked(str(exc))


INSTRUMENT_KINDS = {
    "card": "card",
    "bank_transfer": "bank_account",
    "open_banking": "bank_account",
    "ewallet": "ewallet",
    "crypto": "crypto_wallet",
}


def _record_instrument(payment: Payment, acting_user=None) -> None:
    """Tell the players app which instrument was used (linked-account detection uses it)."""
    if not payment.instrument:
        return
    do_record_instrument(
        payment.player,
        fingerprint=payment.instrument_fingerprint,
        kind=INSTRUMENT_KINDS.get(payment.method_kind, "card"),
        label=payment.instrument,
        acting_user=acting_user,
    )


def check_method(method: PaymentMethod, player: Player, amount: int, *, deposit: bool) -> None:
    """Raise `MethodUnavailable` / `AmountOutOfRange` unless `method` may carry this payment."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise AmountOutOfRange("The amount must be a positive number of minor units.")
    if method.brand_id != player.brand_id:
        raise MethodUnavailable("That payment method belongs to another brand.")
    if not method.psp.is_enabled:
        raise MethodUnavailable(f"{method.psp} is switched off: {method.psp.status_reason}")
    if not method.is_enabled:
        raise MethodUnavailable(f"{method} is switched off: {method.status_reason}")
    if deposit and not method.supports_deposits:
        raise MethodUnavailable(f"{method} does not take deposits.")
    if not deposit and not method.supports_withdrawals:
        raise MethodUnavailable(f"{method} does not pay out withdrawals.")
    if method.country and method.country != player.country:
        raise MethodUnavailable(f"{method} is not offered in {player.country}.")
    currency = method.currency_id
    if method.min_amount is not None and amount < method.min_amount:
        raise AmountOutOfRange(f"The minimum is {format_money(method.min_amount, currency)}.")
    if method.max_amount is not None and amount > method.max_amount:
        raise AmountOutOfRange(f"The maximum is {format_money(method.max_amount, currency)}.")


def new_reference(kind: str) -> str:
    """Our reference for a payment, sent to the PSP: D-… for deposits, W-… for withdrawals."""
    return f"{'D' if kind == PaymentKind.DEPOSIT else 'W'}-{secrets.token_hex(6).upper()}"


def instrument_fingerprint(psp_code: str, instrument: str) -> str:
    return hashlib.sha256(f"{psp_code}:{instrument.strip().lower()}".encode()).hexdigest()


# -- starting payments ----------------------------------------------------------------------


@transaction.atomic
def do_initiate_deposit(
    player: Player,
    *,
    method: PaymentMethod,
    amount: int,
    instrument: str = "",
    fingerprint: str = "",
    reference: str | None = None,
    psp_reference: str | None = None,
    acting_user=None,
) -> Deposit:
    """Start a deposit (status initiated) after checking the player's restrictions and the
    method. Nothing moves in the ledger until the PSP captures it."""
    check_can_deposit(player)
    check_method(method, player, amount, deposit=True)
    deposit = _new_payment(
        Deposit,
        player,
        method,
        amount,
        status=S.INITIATED,
        instrument=instrument,
        fingerprint=fingerprint,
        reference=reference,
        psp_reference=psp_reference,
        acting_user=acting_user,
    )
    return deposit


@transaction.atomic
def do_request_withdrawal(
    player: Player,
    *,
    method: PaymentMethod,
    amount: int,
    instrument: str,
    fingerprint: str = "",
    acting_user=None,
) -> Withdrawal:
    """Request a withdrawal: the amount moves from cash to locked at once, or nothing happens
    (`InsufficientFunds`, `WithdrawalsBlocked`, `MethodUnavailable`).

    A withdrawal to an instrument the player never deposited with nor was paid to goes to
    review (reason `new_payment_method`); the others wait in the queue as requested.
    """
    check_can_withdraw(player)
    check_method(method, player, amount, deposit=False)
    withdrawal = _new_payment(
        Withdrawal,
        player,
        method,
        amount,
        status=S.REQUESTED,
        instrument=instrument,
        fingerprint=fingerprint,
        acting_user=acting_user,
    )
    _post_for_status(withdrawal, S.REQUESTED, acting_user=acting_user)
    if not _instrument_known(withdrawal):
        advance(
            withdrawal,
            [
                Step(
                    S.IN_REVIEW,
                    Actor.SYSTEM,
                    "new_payment_method",
                    "First payout to this instrument",
                )
            ],
        )
    # The risk assessment: stored with the withdrawal; auto-pays it within the day's cap.
    from .risk import do_assess_withdrawal

    do_assess_withdrawal(withdrawal)
    return withdrawal


def _new_payment(
    model,
    player: Player,
    method: PaymentMethod,
    amount: int,
    *,
    status: str,
    instrument: str,
    fingerprint: str,
    acting_user,
    reference: str | None = None,
    psp_reference: str | None = None,
    psp_event=None,
    actor_kind: str | None = None,
    at=None,
) -> Payment:
    now = at or timezone.now()
    kind = PaymentKind.DEPOSIT if model is Deposit else PaymentKind.WITHDRAWAL
    payment = model(
        kind=kind,
        brand_id=player.brand_id,
        player=player,
        psp=method.psp,
        method=method,
        method_kind=method.kind,
        country=player.country,
        currency_id=method.currency_id,
        amount=amount,
        reference=reference or new_reference(kind),
        psp_reference=psp_reference or None,
        instrument=instrument[:64],
        instrument_fingerprint=fingerprint or instrument_fingerprint(method.psp.code, instrument),
        status=status,
        status_changed_at=now,
        created_at=now,
    )
    payment._history_user = acting_user
    payment.save(force_insert=True)
    actor_kind = actor_kind or (Actor.STAFF if acting_user is not None else Actor.PLAYER)
    PaymentTransition.objects.create(
        payment=payment,
        from_status="",
        to_status=status,
        at=now,
        actor_kind=actor_kind,
        actor=acting_user if actor_kind == Actor.STAFF else None,
        psp_event=psp_event,
    )
    _timeline(
        payment, [(status, "")], actor=acting_user, actor_label=_actor_label(actor_kind, payment)
    )
    _record_instrument(payment, acting_user)
    return payment


def _instrument_known(withdrawal: Payment) -> bool:
    return (
        Payment.objects.filter(
            player_id=withdrawal.player_id,
            instrument_fingerprint=withdrawal.instrument_fingerprint,
            status__in=[S.CREDITED, S.PAID, S.REFUNDED],
        )
        .exclude(pk=withdrawal.pk)
        .exists()
    )


# -- moving payments ------------------------------------------------------------------------


def lock_payment(payment_id: int, kind: str | None = None) -> Payment:
    """The payment row, locked for the rest of the transaction (with its PSP and player)."""
    qs = Payment.objects.select_for_update(of=("self",)).select_related("psp", "player")
    if kind:
        qs = qs.filter(kind=kind)
    return qs.get(pk=payment_id)


def advance(
    payment: Payment,
    steps: Sequence[Step],
    *,
    acting_user=None,
    psp_event=None,
    approval=None,
) -> list[PaymentTransition]:
    """Move a locked payment along `steps`, booking each status's ledger movement.

    The whole path is checked against the transition map before anything is written, so an
    invalid step writes nothing (`InvalidTransition`). Call inside a transaction that holds the
    payment's row lock (`lock_payment`).
    """
    status = payment.status
    for step in steps:
        if not step.to_status in payment.transitions_map.get(status, frozenset()):  # noqa: E713
            raise InvalidTransition(
                f"{payment.get_kind_display()} {payment.reference} is "
                f"{S(status).label.lower()} and cannot become {S(step.to_status).label.lower()}."
            )
        status = step.to_status
    for step in steps:
        _post_for_status(payment, step.to_status, acting_user=acting_user, approval=approval)
    now = timezone.now()
    rows, prev = [], payment.status
    for step in steps:
        rows.append(
            PaymentTransition(
                payment=payment,
                from_status=prev,
                to_status=step.to_status,
                at=now,
                actor_kind=step.actor_kind,
                actor=acting_user if step.actor_kind == Actor.STAFF else None,
                reason_code=step.reason_code,
                note=step.note[:300],
                psp_event=psp_event,
            )
        )
        prev = step.to_status
    PaymentTransition.objects.bulk_create(rows)
    payment.status = status
    payment.status_changed_at = now
    reasons = [s.reason_code for s in steps if s.reason_code]
    if reasons:
        payment.status_reason = reasons[-1]
    payment._history_user = acting_user
    payment._change_reason = "; ".join(
        s.note or s.reason_code for s in steps if s.note or s.reason_code
    )
    payment.save(
        update_fields=["status", "status_changed_at", "status_reason", "psp_reference", "psp_note"]
    )
    last = steps[-1]
    _timeline(
        payment,
        [(s.to_status, s.reason_code) for s in steps],
        actor=acting_user if last.actor_kind == Actor.STAFF else None,
        actor_label=_actor_label(last.actor_kind, payment),
    )
    return rows


def _actor_label(actor_kind: str, payment: Payment) -> str:
    if actor_kind == Actor.PSP:
        return payment.psp.name
    if actor_kind == Actor.PLAYER:
        return "player"
    if actor_kind == Actor.SYSTEM:
        return "system"
    return ""


def _timeline(payment: Payment, statuses, *, actor=None, actor_label: str = "") -> None:
    from players.timeline import record_many

    subject = payment.as_kind()
    money = format_money(payment.amount, payment.currency_id)
    events = []
    for status, reason in statuses:
        label = S(status).label.lower()
        summary = f"{payment.get_kind_display()} of {money} via {payment.psp.name}: {label}"
        if reason:
            summary += f" ({reason.replace('_', ' ')})"
        events.append(
            {
                "player": payment.player,
                "kind": "payment",
                "action": f"{payment.kind}.{status}",
                "summary": summary,
                "subject": subject,
                "actor": actor,
                "actor_label": actor_label if actor is None else "",
                "data": {
                    "payment_id": payment.pk,
                    "status": status,
                    "reference": payment.reference,
                },
            }
        )
    record_many(events)


# -- the ledger side of each status ---------------------------------------------------------


def _key(payment: Payment, what: str) -> str:
    return f"payment:{payment.pk}:{what}"


def _post_for_status(payment: Payment, status: str, *, acting_user=None, approval=None) -> None:
    amount = payment.amount
    if payment.is_deposit:
        if status == S.CREDITED:
            wallet = ledger.get_wallet(payment.player, payment.currency_id)
            clearing = _clearing(payment)
            ledger.do_post_transfer(
                idempotency_key=_key(payment, "credited"),
                kind=LedgerTransaction.Kind.DEPOSIT,
                legs=[(clearing, -amount), (wallet["cash"], amount)],
                brand=payment.brand_id,
                player=payment.player,
                subject=payment.as_kind(),
                description=f"Deposit {payment.reference}",
                acting_user=acting_user,
            )
        elif status in (S.REFUNDED, S.REVERSED, S.CHARGED_BACK):
            _post_money_back(payment, status, acting_user=acting_user, approval=approval)
        return
    # withdrawals
    if status == S.REQUESTED:
        wallet = ledger.get_wallet(payment.player, payment.currency_id)
        ledger.do_post_transfer(
            idempotency_key=_key(payment, "requested"),
            kind=LedgerTransaction.Kind.WITHDRAWAL_LOCK,
            legs=[(wallet["cash"], -amount), (wallet["locked"], amount)],
            brand=payment.brand_id,
            player=payment.player,
            subject=payment.as_kind(),
            description=f"Withdrawal {payment.reference} requested",
            acting_user=acting_user,
        )
    elif status == S.PAID:
        wallet = ledger.get_wallet(payment.player, payment.currency_id)
        ledger.do_post_transfer(
            idempotency_key=_key(payment, "paid"),
            kind=LedgerTransaction.Kind.WITHDRAWAL_PAYOUT,
            legs=[(wallet["locked"], -amount), (_clearing(payment), amount)],
            brand=payment.brand_id,
            player=payment.player,
            subject=payment.as_kind(),
            description=f"Withdrawal {payment.reference} paid by {payment.psp.name}",
            acting_user=acting_user,
        )
    elif status in RELEASE_STATUSES:
        wallet = ledger.get_wallet(payment.player, payment.currency_id)
        ledger.do_post_transfer(
            idempotency_key=_key(payment, "released"),
            kind=LedgerTransaction.Kind.WITHDRAWAL_RELEASE,
            legs=[(wallet["locked"], -amount), (wallet["cash"], amount)],
            brand=payment.brand_id,
            player=payment.player,
            subject=payment.as_kind(),
            description=f"Withdrawal {payment.reference} {S(status).label.lower()}: back to cash",
            acting_user=acting_user,
        )


def _clearing(payment: Payment) -> Account:
    return ledger.get_house_account(
        payment.brand_id, Account.Kind.PSP_CLEARING, payment.currency_id, ref=payment.psp.code
    )


def _post_money_back(payment: Payment, status: str, *, acting_user, approval) -> None:
    """Refund, reversal or chargeback of a credited deposit.

    Staff-initiated refunds and reversals (`acting_user` set, `strict`) need the money in the
    player's cash and fail with `InsufficientFunds` otherwise. When the PSP tells us the money
    already went back (a chargeback, or a refund or reversal it executed), we take what the
    player's cash holds and book the rest as a chargeback loss: the money is gone either way.
    """
    amount = payment.amount
    wallet = ledger.get_wallet(payment.player, payment.currency_id)
    clearing = _clearing(payment)
    cash = wallet["cash"]
    kind = {
        S.REFUNDED: LedgerTransaction.Kind.REFUND,
        S.REVERSED: LedgerTransaction.Kind.REVERSAL,
        S.CHARGED_BACK: LedgerTransaction.Kind.CHARGEBACK,
    }[status]
    strict = acting_user is not None and status != S.CHARGED_BACK
    reverses = None
    if status == S.REVERSED:
        reverses = (
            LedgerTransaction.objects.filter(idempotency_key=_key(payment, "credited"))
            .values_list("pk", flat=True)
            .first()
        )
    if strict:
        legs = [(cash, -amount), (clearing, amount)]
    else:
        losses = ledger.get_house_account(
            payment.brand_id, Account.Kind.CHARGEBACK_LOSSES, payment.currency_id
        )
        balances = ledger.lock_accounts([cash.pk, clearing.pk, losses.pk])
        taken = min(balances[cash.pk], amount)
        legs = [(clearing, amount)]
        if taken:
            legs.append((cash, -taken))
        if amount - taken:
            legs.append((losses, -(amount - taken)))
    label = S(status).label.lower()
    ledger.do_post_transfer(
        idempotency_key=_key(payment, status),
        kind=kind,
        legs=legs,
        brand=payment.brand_id,
        player=payment.player,
        subject=payment.as_kind(),
        description=f"Deposit {payment.reference} {label}",
        reverses=reverses,
        approval=approval,
        acting_user=acting_user,
    )


# -- staff actions on withdrawals -----------------------------------------------------------


def _staff_lock(payment_id: int, kind: str, acting_user, action: str) -> Payment:
    payment = lock_payment(payment_id, kind)
    check_in_scope(acting_user, payment.as_kind(), action)
    return payment


@transaction.atomic
def do_approve_withdrawal(withdrawal_id: int, *, acting_user, note: str = "") -> Payment:
    """Approve a requested or in-review withdrawal and send it to the PSP after commit.

    The row lock makes two approvers clicking at once approve (and pay) it exactly once: the
    second gets `InvalidTransition`.
    """
    withdrawal = _staff_lock(withdrawal_id, PaymentKind.WITHDRAWAL, acting_user, "approve")
    advance(withdrawal, [Step(S.APPROVED, Actor.STAFF, "", note)], acting_user=acting_user)
    record_event(
        "payments.withdrawal.approved",
        actor=acting_user,
        subject=withdrawal.as_kind(),
        summary=f"Approved withdrawal {withdrawal.reference}",
        reason=note,
    )
    from ..tasks import enqueue_payout

    transaction.on_commit(lambda: enqueue_payout(withdrawal.pk))
    return withdrawal


@transaction.atomic
def do_reject_withdrawal(
    withdrawal_id: int, *, acting_user, reason_code: str, note: str = ""
) -> Payment:
    """Reject a withdrawal that has not been sent: the amount returns to the player's cash."""
    if not reason_code:
        raise InvalidTransition("A rejection needs a reason code.")
    withdrawal = _staff_lock(withdrawal_id, PaymentKind.WITHDRAWAL, acting_user, "approve")
    advance(withdrawal, [Step(S.REJECTED, Actor.STAFF, reason_code, note)], acting_user=acting_user)
    record_event(
        "payments.withdrawal.rejected",
        actor=acting_user,
        subject=withdrawal.as_kind(),
        summary=f"Rejected withdrawal {withdrawal.reference} ({reason_code})",
        reason=note,
    )
    return withdrawal


@transaction.atomic
def do_hold_withdrawal(
    withdrawal_id: int, *, acting_user, reason_code: str, note: str = ""
) -> Payment:
    """Hold a requested withdrawal for manual review (Risk or Payments)."""
    if not reason_code:
        raise InvalidTransition("A hold needs a reason code.")
    withdrawal = _staff_lock(withdrawal_id, PaymentKind.WITHDRAWAL, acting_user, "review")
    advance(
        withdrawal, [Step(S.IN_REVIEW, Actor.STAFF, reason_code, note)], acting_user=acting_user
    )
    record_event(
        "payments.withdrawal.held",
        actor=acting_user,
        subject=withdrawal.as_kind(),
        summary=f"Held withdrawal {withdrawal.reference} for review ({reason_code})",
        reason=note,
    )
    return withdrawal


@transaction.atomic
def do_cancel_withdrawal(withdrawal_id: int, *, acting_user=None, note: str = "") -> Payment:
    """Cancel a withdrawal before it is sent (the player from the cashier, or staff)."""
    withdrawal = (
        _staff_lock(withdrawal_id, PaymentKind.WITHDRAWAL, acting_user, "approve")
        if acting_user is not None
        else lock_payment(withdrawal_id, PaymentKind.WITHDRAWAL)
    )
    actor = Actor.STAFF if acting_user is not None else Actor.PLAYER
    advance(withdrawal, [Step(S.CANCELLED, actor, "cancelled", note)], acting_user=acting_user)
    return withdrawal


def do_send_payout(withdrawal_id: int) -> Payment | None:
    """Send an approved withdrawal to its PSP. Safe to run twice.

    Marked sent_to_psp and committed *before* the PSP is called, so a crash after the call can
    never send it twice; the PSP deduplicates on our reference anyway. A decline fails the
    withdrawal (money back to cash); no answer leaves it sent_to_psp with the outcome unknown,
    the money held in locked until the PSP's callback or reconciliation says what happened.
    """
    from ..psp.registry import get_adapter
    from .queue import open_payout_attempt, record_payout_outcome

    with transaction.atomic():
        withdrawal = lock_payment(withdrawal_id, PaymentKind.WITHDRAWAL)
        if withdrawal.status != S.APPROVED:
            return None
        advance(withdrawal, [Step(S.SENT_TO_PSP, Actor.SYSTEM)])
        attempt = open_payout_attempt(withdrawal)  # unique attempt key: never sent twice
    adapter = get_adapter(withdrawal.psp.adapter)
    try:
        result = adapter.submit_payout(withdrawal.psp, withdrawal)
    except Exception as exc:  # no answer, or no way to read it: the outcome is unknown
        if not isinstance(exc, PspUnavailable):
            logger.exception("Payout %s: the PSP call failed", withdrawal.reference)
        with transaction.atomic():
            withdrawal = lock_payment(withdrawal_id, PaymentKind.WITHDRAWAL)
            withdrawal.psp_note = f"Outcome unknown: {exc}"[:300]
            withdrawal._change_reason = "payout outcome unknown"
            withdrawal.save(update_fields=["psp_note"])
            record_payout_outcome(attempt, "unknown", withdrawal.psp_note)
        return withdrawal
    with transaction.atomic():
        withdrawal = lock_payment(withdrawal_id, PaymentKind.WITHDRAWAL)
        if result.psp_reference and not withdrawal.psp_reference:
            withdrawal.psp_reference = result.psp_reference
        withdrawal.psp_note = result.message[:300]
        if result.declined and withdrawal.status == S.SENT_TO_PSP:
            advance(
                withdrawal, [Step(S.FAILED, Actor.PSP, result.reason or "declined", result.message)]
            )
        else:
            withdrawal._change_reason = "payout accepted by PSP"
            withdrawal.save(update_fields=["psp_reference", "psp_note"])
        outcome = "declined" if result.declined else "accepted"
        record_payout_outcome(attempt, outcome, result.message)
    return withdrawal
