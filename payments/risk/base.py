"""The interface every risk factor implements, and the registry the engine reads.

A factor looks at one withdrawal in its player's context and answers with a `Signal`: how
strongly it applies (0 to 1), the value it measured and a sentence staff can read. The engine
turns the strength into points (`strength × weight`), adds the points of every factor into the
score (capped at 100), and lets a factor that applies force at least a given path.

To add a factor (AML alerts from compliance, wagering from bonuses): subclass `RiskFactor`,
set `code`, `label`, `weight`, `reason` and optionally `min_path`, implement `evaluate`, and
call `register_factor(MyFactor())` when the app starts (its `AppConfig.ready()`). A factor must
run a bounded number of queries whatever the player's history, and must not write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.db.models import Count, Max, Q, Sum

from ..models import PaymentKind, PaymentStatus, RiskPolicy

S = PaymentStatus

# Deposits whose money reached the player (credited, and what can follow a credit).
SETTLED_DEPOSIT_STATUSES = (S.CREDITED, S.REFUNDED, S.REVERSED, S.CHARGED_BACK)
# Withdrawals that took, or may still take, money out.
LIVE_WITHDRAWAL_STATUSES = (S.REQUESTED, S.IN_REVIEW, S.APPROVED, S.SENT_TO_PSP, S.PAID)


@dataclass(frozen=True)
class Signal:
    """What a factor found. `strength` 0 means it does not apply."""

    strength: float
    value: Any = None
    explanation: str = ""

    def __post_init__(self):
        if not 0 <= self.strength <= 1:
            raise ValueError(f"A signal's strength is between 0 and 1, not {self.strength}.")


@dataclass
class RiskContext:
    """One withdrawal in its player's context, with the reads several factors share (each
    computed once, on first use)."""

    withdrawal: Any  # payments.Payment (a withdrawal)
    player: Any  # players.Player
    policy: RiskPolicy | None
    now: datetime
    extra: dict = field(default_factory=dict)

    @property
    def amount(self) -> int:
        return self.withdrawal.amount

    @property
    def currency(self) -> str:
        return self.withdrawal.currency_id

    @cached_property
    def payment_stats(self) -> dict[str, int]:
        """Deposits and withdrawals of the player in this currency over 24 h, 7 d and 30 d,
        and the largest settled deposit and paid withdrawal ever (one aggregate query)."""
        from ..models import Payment

        deposit = Q(kind=PaymentKind.DEPOSIT, status__in=SETTLED_DEPOSIT_STATUSES)
        withdrawal = Q(kind=PaymentKind.WITHDRAWAL, status__in=LIVE_WITHDRAWAL_STATUSES)
        aggregates = {}
        for label, span in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
                            ("30d", timedelta(days=30))):  # fmt: skip
            since = Q(created_at__gte=self.now - span)
            aggregates[f"deposits_{label}"] = Sum("amount", filter=deposit & since, default=0)
            aggregates[f"withdrawals_{label}"] = Sum("amount", filter=withdrawal & since, default=0)
        aggregates["withdrawal_count_7d"] = Count(
            "pk", filter=withdrawal & Q(created_at__gte=self.now - timedelta(days=7))
        )
        aggregates["largest_deposit"] = Max("amount", filter=deposit, default=0)
        aggregates["largest_paid_withdrawal"] = Max(
            "amount",
            filter=Q(kind=PaymentKind.WITHDRAWAL, status=S.PAID) & ~Q(pk=self.withdrawal.pk),
            default=0,
        )
        return Payment.objects.filter(
            player_id=self.player.pk, currency_id=self.currency
        ).aggregate(**aggregates)


class RiskFactor:
    """Base class of the factors. Subclasses set the attributes and implement `evaluate`."""

    code: str = ""
    label: str = ""
    weight: int = 0  # the most points the factor can add to the score
    reason: str = ""  # the reason code it gives the path when it applies
    reason_label: str = ""  # what staff read for that code in the queue (default: `label`)
    min_path: str | None = None  # a path it forces at least when it applies

    def evaluate(self, ctx: RiskContext) -> Signal:
        raise NotImplementedError


_FACTORS: dict[str, RiskFactor] = {}


def register_factor(
    factor: RiskFactor, *, replace: bool = False, default: bool = False
) -> RiskFactor:
    """Add a factor to every assessment from now on. Codes are unique: registering a code
    twice is a mistake unless `replace` says it is meant (a better version of a built-in).
    `default` (the built-ins) registers only if no factor has the code yet, so an app that
    replaced a built-in before the built-ins loaded keeps its version."""
    if not factor.code or not factor.label or factor.weight < 0:
        raise ValueError(f"{type(factor).__name__} needs a code, a label and a weight ≥ 0.")
    if factor.code in _FACTORS:
        if default:
            return _FACTORS[factor.code]
        if not replace:
            raise ValueError(f"A risk factor {factor.code!r} is already registered.")
    _FACTORS[factor.code] = factor
    return factor


def unregister_factor(code: str) -> None:
    _FACTORS.pop(code, None)


def registered_factors() -> list[RiskFactor]:
    from . import factors  # noqa: F401  (the built-in factors register on import)

    return list(_FACTORS.values())
