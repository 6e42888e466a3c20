"""Shared reads of the payments app, always scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import F, Lookup, Q, QuerySet
from django.utils import timezone

from backoffice.models import ApprovalRequest
from backoffice.money import format_money
from backoffice.scoping import brand_ids_for, permission_name

from .models import (
    Account,
    Deposit,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentKind,
    PaymentStatus,
    Psp,
    PspInboxEvent,
    Withdrawal,
)

S = PaymentStatus

# A payout the PSP has not confirmed for this long is called out as unconfirmed.
UNCONFIRMED_AFTER = timedelta(hours=24)


def visible_kinds(user) -> list[str]:
    """The payment kinds `user` may see: deposits, withdrawals, both or neither."""
    kinds = []
    if user.has_perm(permission_name(Deposit, "view")):
        kinds.append(PaymentKind.DEPOSIT)
    if user.has_perm(permission_name(Withdrawal, "view")):
        kinds.append(PaymentKind.WITHDRAWAL)
    return kinds


def payments_for(user) -> QuerySet[Payment]:
    """Deposits and withdrawals in the user's brands, of the kinds their role may see."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Payment.objects.none()
    kinds = visible_kinds(user)
    if not kinds:
        return Payment.objects.none()
    qs = Payment.objects.in_brands(user)
    return qs if len(kinds) == 2 else qs.filter(kind=kinds[0])


class _EqualsAny(Lookup):
    """`lhs = ANY(rhs)`, rhs an array expression (used as an expression, not registered)."""

    lookup_name = "equals_any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)
        return f"{lhs} = ANY({rhs})", (*lhs_params, *rhs_params)


def reference_q(value: str) -> Q:
    """Payments whose own reference or PSP reference is exactly `value`.

    The PSP reference is unique per PSP, indexed as (psp_id, psp_reference): PostgreSQL probes
    that index only when psp_id is constrained in the index condition. `psp_id = ANY(ARRAY(
    SELECT id FROM payments_psp))` is an init plan evaluated once, so it becomes an index
    condition (one probe per PSP) even inside the OR; `psp_id IN (SELECT ...)` does not, and
    PostgreSQL then reads the whole index (~250 ms at 5M payments).
    """
    every_psp = _EqualsAny(F("psp_id"), ArraySubquery(Psp.objects.order_by().values("pk")))
    return Q(reference=value) | Q(every_psp, psp_reference=value)


def ledger_transactions_for_payment(payment: Payment) -> QuerySet[LedgerTransaction]:
    return LedgerTransaction.objects.filter(
        object_type=payment.as_kind()._meta.label_lower, object_id=str(payment.pk)
    ).order_by("id")


def psp_events_for_payment(payment: Payment) -> QuerySet[PspInboxEvent]:
    """The raw callbacks about a payment, including the ones that could not be applied."""
    q = Q(payment=payment)
    if payment.psp_reference:
        q |= Q(psp_id=payment.psp_id, psp_reference=payment.psp_reference)
    return PspInboxEvent.objects.filter(q).order_by("id")


def pending_approvals_for(subject) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(
        object_type=subject._meta.label_lower,
        object_id=str(subject.pk),
        status=ApprovalRequest.Status.PENDING,
    ).order_by("-requested_at")


# -- "where is this money now" --------------------------------------------------------------


def _day(dt) -> str:
    return dt.strftime("%d %b %Y")


def chargeback_taken(payment: Payment) -> int | None:
    """How much a chargeback took from the player's cash (the rest was an operator loss)."""
    total = (
        LedgerEntry.objects.filter(
            transaction__idempotency_key=f"payment:{payment.pk}:charged_back",
            account__kind=Account.Kind.CASH,
        )
        .values_list("amount", flat=True)
        .first()
    )
    return None if total is None else -total


def where_is_the_money(payment: Payment, *, now=None, taken: int | None = None) -> str:
    """One plain sentence a support agent can read to the player, from the payment's status.

    It says where the money is, since when, and what happens next, without jargon. `taken`
    (for a chargeback) is what left the player's cash, from `chargeback_taken`.
    """
    now = now or timezone.now()
    money = format_money(payment.amount, payment.currency_id)
    psp = payment.psp.name
    since = _day(payment.status_changed_at)
    instrument = payment.instrument or "the player's account"
    st = payment.status
    if payment.kind == PaymentKind.DEPOSIT:
        if st == S.INITIATED:
            return (
                f"The player started a {money} deposit on {_day(payment.created_at)}. {psp} has "
                "not confirmed it, so no money has been taken and nothing is in the balance yet."
            )
        if st == S.AUTHORISED:
            return (
                f"{psp} authorised {money} on {since}: the money is reserved on {instrument} but "
                "not yet taken. It reaches the balance as soon as the payment is captured."
            )
        if st in (S.CAPTURED, S.CREDITED):
            return f"The {money} is in the player's cash balance since {since}."
        if st == S.FAILED:
            why = f" ({payment.status_reason.replace('_', ' ')})" if payment.status_reason else ""
            return (
                f"The deposit failed on {since}{why}. No money was taken; if the player's bank "
                "shows a pending amount, it is a reservation that the bank releases by itself."
            )
        if st == S.EXPIRED:
            return (
                f"The player did not complete the payment, which expired on {since}. "
                "No money was taken."
            )
        if st == S.REFUNDED:
            return (
                f"The {money} was refunded to {instrument} through {psp} on {since}. Banks "
                "usually show a refund within 3 to 5 working days."
            )
        if st == S.REVERSED:
            return (
                f"The deposit was reversed on {since}: the {money} was taken out of the balance "
                f"and returned through {psp}."
            )
        if st == S.CHARGED_BACK:
            if taken is not None and taken < payment.amount:
                took = format_money(taken, payment.currency_id)
                return (
                    f"The player's bank charged the {money} back on {since}. The balance held "
                    f"only {took}, which was taken; the rest had already been spent or "
                    "withdrawn. Ask the player to contact their bank about the dispute."
                )
            return (
                f"The player's bank charged the {money} back on {since}; it was taken out of the "
                "balance. Ask the player to contact their bank about the dispute."
            )
    else:
        if st in (S.REQUESTED, S.IN_REVIEW):
            review = ""
            if st == S.IN_REVIEW:
                reason = (payment.status_reason or "a routine check").replace("_", " ")
                review = f" It is being reviewed ({reason})."
            return (
                f"The {money} is set aside in the player's wallet (not withdrawable, not "
                f"playable) since {_day(payment.created_at)}, waiting for approval.{review} "
                "Nothing has been sent yet."
            )
        if st == S.APPROVED:
            return f"Approved on {since}; the {money} is being sent to {psp}."
        if st == S.SENT_TO_PSP:
            if now - payment.status_changed_at > UNCONFIRMED_AFTER:
                days = max(1, (now - payment.status_changed_at).days)
                return (
                    f"Sent to {psp} on {since}, but {psp} has not confirmed the outcome for "
                    f"{days} day{'s' if days != 1 else ''}. The {money} stays held until {psp} "
                    "or the settlement report says whether it was paid; it will not be lost."
                )
            return (
                f"Sent to {psp} on {since} for payment to {instrument}; waiting for {psp} to "
                "confirm it was paid."
            )
        if st == S.PAID:
            return (
                f"Paid out to {instrument} by {psp} on {since}. Bank transfers can take 1 to 3 "
                "working days to appear."
            )
        if st in (S.REJECTED, S.CANCELLED, S.FAILED):
            label = {S.REJECTED: "rejected", S.CANCELLED: "cancelled", S.FAILED: "failed"}[st]
            why = f" ({payment.status_reason.replace('_', ' ')})" if payment.status_reason else ""
            return (
                f"The withdrawal was {label} on {since}{why}; the {money} went back to the "
                "player's cash balance."
            )
    return f"{payment.get_kind_display()} of {money}: {payment.get_status_display().lower()}."


# -- the player's wallet --------------------------------------------------------------------


@dataclass(frozen=True)
class WalletRow:
    currency: str
    cash: int
    bonus: int
    locked: int

    @property
    def total(self) -> int:
        return self.cash + self.bonus + self.locked


def wallet_rows(player) -> list[WalletRow]:
    """The player's balances per currency and kind (one query)."""
    by_currency: dict[str, dict[str, int]] = {}
    for currency, kind, balance in Account.objects.filter(player_id=player.pk).values_list(
        "currency_id", "kind", "balance"
    ):
        by_currency.setdefault(currency, {})[kind] = balance
    rows = [
        WalletRow(c, k.get("cash", 0), k.get("bonus", 0), k.get("locked", 0))
        for c, k in by_currency.items()
    ]
    rows.sort(key=lambda r: (r.currency != player.currency, r.currency))
    return rows


def recent_movements(player, limit: int = 10) -> list[LedgerEntry]:
    """The player's latest wallet entries, newest first (one index range scan)."""
    return list(
        LedgerEntry.objects.filter(player_id=player.pk)
        .select_related("transaction", "account")
        .order_by("-id")[:limit]
    )


def recent_payments(player, user, limit: int = 8) -> list[Payment]:
    kinds = visible_kinds(user)
    if not kinds:
        return []
    return list(
        Payment.objects.filter(player_id=player.pk, kind__in=kinds)
        .select_related("psp")
        .order_by("-id")[:limit]
    )


def pending_adjustments_for(player) -> list[ApprovalRequest]:
    from .services.corrections import ADJUSTMENT_ACTION

    return list(
        ApprovalRequest.objects.filter(
            action=ADJUSTMENT_ACTION,
            object_type=player._meta.label_lower,
            object_id=str(player.pk),
            status=ApprovalRequest.Status.PENDING,
        ).select_related("requested_by")[:5]
    )


def user_brand_filter(user) -> Q:
    ids = brand_ids_for(user)
    return Q() if ids is None else Q(brand_id__in=ids)
