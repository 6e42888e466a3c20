"""The assessment engine: every registered factor on one withdrawal, a score, a path.

Pure reads: `assess()` writes nothing, so it can run inside the request's transaction, in a
test, or to preview a policy change. `payments.services.risk` stores the result and acts on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError

from ..models import RiskPath, RiskPolicy
from ..models.risk import PATH_RANK
from .base import RiskContext, RiskFactor, registered_factors

logger = logging.getLogger(__name__)

ENGINE_VERSION = 1
MAX_SCORE = 100

# Thresholds when a brand and currency have no policy (the model's defaults).
DEFAULT_REVIEW_SCORE = RiskPolicy._meta.get_field("review_score").default
DEFAULT_MANUAL_SCORE = RiskPolicy._meta.get_field("manual_score").default

# Reason codes of the policy rules (the factors bring their own).
NO_POLICY = "no_risk_policy"
ABOVE_AUTO_PAY_LIMIT = "above_auto_pay_limit"
AUTO_PAY_OFF = "auto_pay_off"
DAILY_CAP_REACHED = "daily_cap_reached"
CHECK_FAILED = "risk_check_failed"
HIGH_SCORE = "high_score"

POLICY_REASONS = {
    NO_POLICY: "No risk policy for this brand and currency",
    ABOVE_AUTO_PAY_LIMIT: "Above the auto-pay limit",
    AUTO_PAY_OFF: "Auto-pay switched off",
    DAILY_CAP_REACHED: "Daily auto-pay cap reached",
    CHECK_FAILED: "A risk check failed",
    HIGH_SCORE: "High risk score",
}


def reason_labels() -> dict[str, str]:
    """Every reason code an assessment can give, with its label (for filters and badges)."""
    labels = {f.reason: f.reason_label or f.label for f in registered_factors() if f.reason}
    labels.update(POLICY_REASONS)
    return labels


@dataclass(frozen=True)
class Assessment:
    """What the engine decided, before anything is stored."""

    score: int
    path: str
    reasons: tuple[str, ...]
    factors: tuple[dict, ...]
    policy: dict

    @property
    def wants_auto_pay(self) -> bool:
        return self.path == RiskPath.AUTO_PAY


def _stricter(a: str, b: str) -> str:
    return a if PATH_RANK[a] >= PATH_RANK[b] else b


def _evaluate(factor: RiskFactor, ctx: RiskContext) -> tuple[dict, bool]:
    """(the factor's line, whether it failed). A factor that raises does not stop the
    assessment: it is recorded as failed and the withdrawal goes to a person. Database errors
    are not caught: the transaction is broken and must roll back."""
    line = {"code": factor.code, "label": factor.label, "weight": factor.weight}
    try:
        signal = factor.evaluate(ctx)
    except DatabaseError:
        raise
    except Exception as exc:
        logger.exception("Risk factor %s failed on withdrawal %s", factor.code, ctx.withdrawal.pk)
        line.update(points=0, value=None, explanation=f"Could not be checked: {exc}"[:300],
                    reason=CHECK_FAILED, failed=True)  # fmt: skip
        return line, True
    points = round(factor.weight * signal.strength)
    line.update(
        points=points,
        value=signal.value,
        explanation=signal.explanation,
        reason=factor.reason if points else "",
    )
    return line, False


def assess(
    withdrawal,
    *,
    policy: RiskPolicy | None,
    now: datetime,
    factors: list[RiskFactor] | None = None,
) -> Assessment:
    """Score `withdrawal` with every registered factor (or `factors`) and pick its path."""
    ctx = RiskContext(withdrawal=withdrawal, player=withdrawal.player, policy=policy, now=now)
    lines, failed, forced = [], False, RiskPath.AUTO_PAY
    for factor in factors if factors is not None else registered_factors():
        line, broke = _evaluate(factor, ctx)
        failed |= broke
        lines.append(line)
        if line["points"] and factor.min_path:
            forced = _stricter(forced, factor.min_path)
    score = min(MAX_SCORE, sum(line["points"] for line in lines))
    review_at = policy.review_score if policy else DEFAULT_REVIEW_SCORE
    manual_at = policy.manual_score if policy else DEFAULT_MANUAL_SCORE

    if score >= manual_at:
        path = RiskPath.MANUAL
    elif score >= review_at:
        path = RiskPath.REVIEW
    else:
        path = RiskPath.AUTO_PAY
    path = _stricter(path, forced)

    scored = sorted((line for line in lines if line["points"]), key=lambda item: -item["points"])
    reasons: list[str] = []
    if path != RiskPath.AUTO_PAY:
        reasons = [line["reason"] for line in scored if line["reason"]]
        if path == RiskPath.MANUAL and not reasons:
            reasons.append(HIGH_SCORE)
    if failed:
        path = _stricter(path, RiskPath.REVIEW)
        reasons.append(CHECK_FAILED)
    if path == RiskPath.AUTO_PAY:
        if policy is None:
            path, reasons = RiskPath.REVIEW, [NO_POLICY]
        elif not policy.auto_pay_max_amount or not policy.daily_auto_pay_cap:
            path, reasons = RiskPath.REVIEW, [AUTO_PAY_OFF]
        elif withdrawal.amount > policy.auto_pay_max_amount:
            path, reasons = RiskPath.REVIEW, [ABOVE_AUTO_PAY_LIMIT]
    snapshot = (
        policy.snapshot()
        if policy
        else {"policy_id": None, "review_score": review_at, "manual_score": manual_at}
    )
    return Assessment(
        score=score,
        path=path,
        reasons=tuple(dict.fromkeys(reasons)),
        factors=tuple(lines),
        policy=snapshot,
    )
