"""The built-in risk factors. Each reads the player's context in one query at most.

Weights are the most each can add to the 0–100 score; several weak signals add up to a review,
one strong one (restrictions, risk flags) is enough on its own with the default thresholds
(review from 30, manual from 70).
"""

from __future__ import annotations

from datetime import timedelta

from backoffice.money import format_money

from ..models import Account, PaymentKind, RiskPath
from .base import SETTLED_DEPOSIT_STATUSES, RiskContext, RiskFactor, Signal, register_factor

RECENT_CHANGE_DAYS = 7
RISK_NOTE_DAYS = 30


def _money(ctx: RiskContext, amount: int) -> str:
    return format_money(amount, ctx.currency)


class KycFactor(RiskFactor):
    """The amount is above what the player's KYC level allows without more checks."""

    code = "kyc_level"
    label = "KYC level vs amount"
    weight = 30
    reason = "kyc_incomplete"
    reason_label = "KYC incomplete"

    def evaluate(self, ctx: RiskContext) -> Signal:
        level = ctx.player.kyc_level
        if level >= 3:
            return Signal(0, {"kyc_level": level}, "Source of funds verified (level 3).")
        # Without a policy, only an unverified player's withdrawals count.
        default = 0 if level == 0 else None
        limit = default if ctx.policy is None else ctx.policy.kyc_limit(level)
        value = {"kyc_level": level, "limit": limit}
        if limit is not None and ctx.amount > limit:
            return Signal(
                1, value,
                f"KYC level {level} covers withdrawals up to {_money(ctx, limit)}; "
                f"this one is {_money(ctx, ctx.amount)}.",
            )  # fmt: skip
        return Signal(0, value, f"Within what KYC level {level} covers.")


class BonusWageringFactor(RiskFactor):
    """Bonus money still on the account: wagering is outstanding, the cash may be bonus-made.

    The bonuses app can replace this with the exact wagering left (register a factor with the
    same code and `replace=True`)."""

    code = "bonus_wagering"
    label = "Wagering outstanding"
    weight = 25
    reason = "wagering_outstanding"
    reason_label = "Wagering outstanding"

    def evaluate(self, ctx: RiskContext) -> Signal:
        balance = (
            Account.objects.filter(
                player_id=ctx.player.pk, currency_id=ctx.currency, kind=Account.Kind.BONUS
            )
            .values_list("balance", flat=True)
            .first()
        ) or 0
        if balance > 0:
            return Signal(
                1, {"bonus_balance": balance},
                f"{_money(ctx, balance)} of bonus money is still being wagered.",
            )  # fmt: skip
        return Signal(0, {"bonus_balance": 0}, "No bonus money on the account.")


class VelocityFactor(RiskFactor):
    """Deposits against withdrawals over 24 h, 7 d and 30 d: money cycled through with little
    play, or far more taken out than put in lately."""

    code = "velocity"
    label = "Deposits vs withdrawals (24 h / 7 d / 30 d)"
    weight = 25
    reason = "velocity"
    reason_label = "Velocity"

    def evaluate(self, ctx: RiskContext) -> Signal:
        stats = ctx.payment_stats
        value: dict = {
            span: {
                "deposits": stats[f"deposits_{span}"],
                "withdrawals": stats[f"withdrawals_{span}"],
            }
            for span in ("24h", "7d", "30d")
        }
        value["withdrawal_count_7d"] = stats["withdrawal_count_7d"]
        findings: list[tuple[float, str]] = []
        dep24, wd24 = stats["deposits_24h"], stats["withdrawals_24h"]
        if dep24 and wd24 * 10 >= dep24 * 8:
            findings.append((1.0, f"withdraws {_money(ctx, wd24)} of {_money(ctx, dep24)} "
                                  "deposited in the last 24 h (little play)"))  # fmt: skip
        dep7, wd7 = stats["deposits_7d"], stats["withdrawals_7d"]
        if dep7 and wd7 >= 2 * dep7:
            findings.append((0.6, f"{_money(ctx, wd7)} out against {_money(ctx, dep7)} in "
                                  "over 7 days"))  # fmt: skip
        dep30, wd30 = stats["deposits_30d"], stats["withdrawals_30d"]
        if wd30 >= 3 * dep30 and wd30 > 0:
            findings.append((0.4, f"{_money(ctx, wd30)} out against {_money(ctx, dep30)} in "
                                  "over 30 days"))  # fmt: skip
        if stats["withdrawal_count_7d"] >= 5:
            findings.append((0.5, f"{stats['withdrawal_count_7d']} withdrawals in 7 days"))
        if not findings:
            return Signal(0, value, "Deposits and withdrawals in proportion.")
        strength = max(s for s, _ in findings)
        text = "; ".join(t for _, t in findings)
        return Signal(strength, value, text[0].upper() + text[1:] + ".")


class NewMethodFactor(RiskFactor):
    """The payout goes to an instrument the player never deposited with."""

    code = "new_method"
    label = "Payout to a method never used to deposit"
    weight = 35
    reason = "new_payment_method"
    reason_label = "New payout method"
    min_path = RiskPath.REVIEW

    def evaluate(self, ctx: RiskContext) -> Signal:
        from ..models import Payment

        fingerprint = ctx.withdrawal.instrument_fingerprint
        used = Payment.objects.filter(
            player_id=ctx.player.pk,
            kind=PaymentKind.DEPOSIT,
            instrument_fingerprint=fingerprint,
            status__in=SETTLED_DEPOSIT_STATUSES,
        ).exists()
        value = {"instrument": ctx.withdrawal.instrument, "deposited_with": used}
        if used:
            return Signal(0, value, "The player deposited with this instrument before.")
        return Signal(
            1, value, f"No deposit was ever made with {ctx.withdrawal.instrument or 'it'}."
        )


class RecentChangeFactor(RiskFactor):
    """A payment instrument or a device first seen in the last days, on an account that is not
    itself new (a new account's devices are all new: the account-age factor covers it)."""

    code = "recent_change"
    label = "Method or device added recently"
    weight = 15
    reason = "recent_account_change"
    reason_label = "New method or device"

    def evaluate(self, ctx: RiskContext) -> Signal:
        from players.models import PlayerDevice, PlayerInstrument

        since = ctx.now - timedelta(days=RECENT_CHANGE_DAYS)
        if ctx.player.registered_at >= since:
            return Signal(0, {}, "The account itself is new (see account age).")
        # The payout's own instrument is the new-method factor's business, not this one's.
        instruments = (
            PlayerInstrument.objects.filter(player_id=ctx.player.pk, first_seen_at__gte=since)
            .exclude(fingerprint=ctx.withdrawal.instrument_fingerprint)
            .count()
        )
        devices = PlayerDevice.objects.filter(
            player_id=ctx.player.pk, first_seen_at__gte=since
        ).count()
        value = {"new_instruments": instruments, "new_devices": devices}
        if not instruments and not devices:
            return Signal(0, value, f"No new method or device in {RECENT_CHANGE_DAYS} days.")
        parts = []
        if instruments:
            parts.append(f"{instruments} payment method{'s' if instruments > 1 else ''}")
        if devices:
            parts.append(f"{devices} device{'s' if devices > 1 else ''}")
        return Signal(
            1, value, f"{' and '.join(parts)} added in the last {RECENT_CHANGE_DAYS} days."
        )


class AccountAgeFactor(RiskFactor):
    code = "account_age"
    label = "Account age"
    weight = 20
    reason = "new_account"
    reason_label = "New account"

    def evaluate(self, ctx: RiskContext) -> Signal:
        age = ctx.now - ctx.player.registered_at
        days = max(age.days, 0)
        value = {"days": days}
        if age < timedelta(days=7):
            return Signal(1, value, f"Registered {days} day{'s' if days != 1 else ''} ago.")
        if age < timedelta(days=30):
            return Signal(0.5, value, f"Registered {days} days ago.")
        return Signal(0, value, f"Registered {days} days ago.")


class RiskFlagsFactor(RiskFactor):
    """Open fraud flags: risk notes written about the player lately. The compliance app's AML
    alerts plug in as their own factor."""

    code = "risk_flags"
    label = "Open AML or fraud flags"
    weight = 40
    reason = "risk_flags"
    reason_label = "Risk flags"
    min_path = RiskPath.REVIEW

    def evaluate(self, ctx: RiskContext) -> Signal:
        from players.models import NoteReason, PlayerNote

        since = ctx.now - timedelta(days=RISK_NOTE_DAYS)
        count = PlayerNote.objects.filter(
            player_id=ctx.player.pk, category=NoteReason.Category.RISK, created_at__gte=since
        ).count()
        value = {"risk_notes": count, "days": RISK_NOTE_DAYS}
        if count:
            return Signal(
                1, value,
                f"{count} risk note{'s' if count > 1 else ''} in the last {RISK_NOTE_DAYS} days.",
            )  # fmt: skip
        return Signal(0, value, f"No risk note in {RISK_NOTE_DAYS} days.")


class RestrictionsFactor(RiskFactor):
    """Restrictions on the account (deposits, play or bonuses blocked) or a status other than
    active: someone already judged the account risky."""

    code = "restrictions"
    label = "Restrictions on the account"
    weight = 40
    reason = "account_restricted"
    reason_label = "Restricted account"
    min_path = RiskPath.REVIEW

    def evaluate(self, ctx: RiskContext) -> Signal:
        player = ctx.player
        restrictions = player.active_restrictions
        value = {"status": player.status, "restrictions": restrictions}
        parts = list(restrictions)
        if player.status != player.Status.ACTIVE:
            parts.insert(0, f"account {player.get_status_display().lower()}")
        if not parts:
            return Signal(0, value, "Active, no restriction.")
        text = ", ".join(parts)
        return Signal(1, value, text[0].upper() + text[1:] + ".")


class AmountHistoryFactor(RiskFactor):
    """The amount against the player's history: far above any payout they had, or (first
    payout) far above anything they deposited."""

    code = "amount_history"
    label = "Amount vs the player's history"
    weight = 20
    reason = "unusual_amount"
    reason_label = "Unusual amount"

    def evaluate(self, ctx: RiskContext) -> Signal:
        stats = ctx.payment_stats
        paid, deposit = stats["largest_paid_withdrawal"], stats["largest_deposit"]
        value = {"largest_paid_withdrawal": paid, "largest_deposit": deposit}
        amount = ctx.amount
        if paid:
            largest = f"the largest payout so far ({_money(ctx, paid)})"
            if amount > 3 * paid:
                return Signal(1, value, f"More than 3× {largest}.")
            if amount > 2 * paid:
                return Signal(0.5, value, f"More than 2× {largest}.")
            return Signal(0, value, f"In line with past payouts: {largest}.")
        if not deposit:
            return Signal(1, value, "First payout, and no settled deposit in this currency.")
        largest = f"the largest deposit ({_money(ctx, deposit)})"
        if amount > 5 * deposit:
            return Signal(1, value, f"First payout, over 5× {largest}.")
        return Signal(0, value, f"First payout, in line with {largest}.")


BUILT_IN = (
    KycFactor(),
    BonusWageringFactor(),
    VelocityFactor(),
    NewMethodFactor(),
    RecentChangeFactor(),
    AccountAgeFactor(),
    RiskFlagsFactor(),
    RestrictionsFactor(),
    AmountHistoryFactor(),
)

for _factor in BUILT_IN:
    register_factor(_factor, default=True)
