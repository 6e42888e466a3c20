"""Risk assessment of new withdrawals: the paths, auto-pay within the daily cap (also under
concurrent requests), the factor interface, and the Payments leads' configuration."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from backoffice.models import AuditEvent
from payments.exceptions import PaymentsError
from payments.models import (
    AutoPayUsage,
    PaymentStatus,
    PayoutAttempt,
    RiskAssessment,
    RiskPath,
    RiskPolicy,
    Withdrawal,
)
from payments.risk import base as risk_base
from payments.risk.base import RiskFactor, Signal, register_factor, unregister_factor
from payments.services.risk import do_save_risk_policy, do_set_approver_limit
from players.models import NoteReason, PlayerNote

S = PaymentStatus
pytestmark = pytest.mark.django_db


def factor_points(assessment) -> dict[str, int]:
    return {f["code"]: f["points"] for f in assessment.factors}


def test_a_low_risk_withdrawal_auto_pays_within_the_cap(
    policy, make_player, withdraw, django_capture_on_commit_callbacks
):
    player = make_player()
    with django_capture_on_commit_callbacks(execute=True):  # the payout, inline
        w = withdraw(player, 20_000)
    assessment = RiskAssessment.objects.get(pk=w.pk)
    assert assessment.path == RiskPath.AUTO_PAY and assessment.auto_paid
    assert assessment.score < policy.review_score
    assert assessment.reasons == []
    # Every factor is stored with its value, weight and explanation, even those adding 0.
    assert {f["code"] for f in assessment.factors} >= {
        "kyc_level",
        "bonus_wagering",
        "velocity",
        "new_method",
        "recent_change",
        "account_age",
        "risk_flags",
        "restrictions",
        "amount_history",
    }
    assert all({"value", "weight", "points", "explanation"} <= set(f) for f in assessment.factors)
    w.refresh_from_db()
    assert w.status == S.SENT_TO_PSP
    assert [t.to_status for t in w.transitions.all()] == [
        "requested",
        "approved",
        "sent_to_psp",
    ]
    assert w.transitions.get(to_status="approved").reason_code == "auto_pay"
    usage = AutoPayUsage.objects.get()
    assert (usage.used_amount, usage.used_count) == (20_000, 1)
    attempt = PayoutAttempt.objects.get(withdrawal=w)
    assert (attempt.attempt_key, attempt.outcome) == (f"{w.reference}-1", "accepted")
    assert AuditEvent.objects.filter(action="payments.withdrawal.auto_paid").count() == 1


def test_above_the_per_withdrawal_limit_or_the_day_cap_it_waits_for_review(
    policy, make_player, withdraw
):
    big = withdraw(make_player(deposit=200_000), 60_000)  # above 500.00
    assert RiskAssessment.objects.get(pk=big.pk).reasons == ["above_auto_pay_limit"]
    assert Withdrawal.objects.get(pk=big.pk).status == S.REQUESTED
    paid = [withdraw(make_player(), 45_000) for _ in range(2)]  # 900.00 of the 1,000.00 cap
    third = withdraw(make_player(), 20_000)  # would make 1,100.00
    assert [RiskAssessment.objects.get(pk=w.pk).auto_paid for w in paid] == [True, True]
    a = RiskAssessment.objects.get(pk=third.pk)
    assert (a.path, a.reasons, a.auto_paid) == (RiskPath.REVIEW, ["daily_cap_reached"], False)
    assert AutoPayUsage.objects.get().used_amount == 90_000


def test_without_a_policy_nothing_auto_pays(make_player, withdraw):
    w = withdraw(make_player(), 1_000)
    a = RiskAssessment.objects.get(pk=w.pk)
    assert (a.path, a.reasons) == (RiskPath.REVIEW, ["no_risk_policy"])
    assert Withdrawal.objects.get(pk=w.pk).status == S.REQUESTED


def test_a_new_payout_method_goes_to_review_with_its_reason(policy, make_player, withdraw):
    w = withdraw(make_player(), 10_000, instrument="MASTERCARD •••• 1111")
    a = RiskAssessment.objects.get(pk=w.pk)
    assert a.path == RiskPath.REVIEW and a.reasons[0] == "new_payment_method"
    assert factor_points(a)["new_method"] == 35
    assert Withdrawal.objects.get(pk=w.pk).status == S.IN_REVIEW  # held by the payments rule


def test_a_high_risk_withdrawal_goes_to_manual_with_every_reason(policy, make_player, withdraw):
    player = make_player(days=3, kyc_level=0, block_bonuses=True)
    reason = NoteReason.objects.create(code="fraud-signal", label="Fraud", category="risk")
    PlayerNote.objects.create(
        player=player, brand=player.brand, category="risk", reason=reason, body="Chargeback ring"
    )
    w = withdraw(player, 30_000)
    a = RiskAssessment.objects.get(pk=w.pk)
    assert a.path == RiskPath.MANUAL and a.score == 100
    points = factor_points(a)
    assert points["restrictions"] == 40 and points["risk_flags"] == 40
    assert points["kyc_level"] == 30 and points["account_age"] == 20
    assert {"account_restricted", "risk_flags", "kyc_incomplete", "new_account"} <= set(a.reasons)
    top = a.top_factors
    assert [f["points"] for f in top] == sorted((f["points"] for f in top), reverse=True)
    restrictions = next(f for f in a.factors if f["code"] == "restrictions")
    assert restrictions["value"]["restrictions"] == ["Bonuses blocked"]
    assert restrictions["explanation"] == "Bonuses blocked."


def test_cycling_money_through_in_a_day_is_flagged(policy, make_player, withdraw):
    player = make_player()
    from payments.models import Payment

    Payment.objects.filter(player=player, kind="deposit").update(created_at=timezone.now())
    a = RiskAssessment.objects.get(pk=withdraw(player, 90_000).pk)
    velocity = next(f for f in a.factors if f["code"] == "velocity")
    assert velocity["points"] == 25 and "little play" in velocity["explanation"]
    assert velocity["value"]["24h"] == {"deposits": 100_000, "withdrawals": 90_000}


def test_assessing_twice_changes_nothing(policy, make_player, withdraw):
    from payments.services.risk import do_assess_withdrawal

    w = withdraw(make_player(), 20_000)
    before = RiskAssessment.objects.get(pk=w.pk)
    again = do_assess_withdrawal(Withdrawal.objects.get(pk=w.pk))
    assert again.pk == before.pk and AutoPayUsage.objects.get().used_count == 1


# -- the factor interface --------------------------------------------------------------------


class SanctionsHit(RiskFactor):
    code, label, weight, reason, min_path = "sanctions", "Sanctions list", 50, "aml_check", "manual"

    def evaluate(self, ctx):
        return Signal(1, {"list": "test"}, "Name on the test list.")


class Broken(RiskFactor):
    code, label, weight, reason = "broken", "Broken plug-in", 10, "broken"

    def evaluate(self, ctx):
        raise RuntimeError("feed down")


@pytest.fixture
def plugged():
    added = []

    def plug(factor):
        register_factor(factor)
        added.append(factor.code)

    yield plug
    for code in added:
        unregister_factor(code)


def test_a_plugged_in_factor_takes_part_and_can_force_a_path(
    policy, make_player, withdraw, plugged
):
    plugged(SanctionsHit())
    a = RiskAssessment.objects.get(pk=withdraw(make_player(), 10_000).pk)
    assert a.path == RiskPath.MANUAL and "aml_check" in a.reasons
    assert factor_points(a)["sanctions"] == 50


def test_a_failing_factor_sends_the_withdrawal_to_a_person(policy, make_player, withdraw, plugged):
    plugged(Broken())
    a = RiskAssessment.objects.get(pk=withdraw(make_player(), 10_000).pk)
    assert (a.path, a.reasons) == (RiskPath.REVIEW, ["risk_check_failed"])
    broken = next(f for f in a.factors if f["code"] == "broken")
    assert broken["failed"] and "feed down" in broken["explanation"]


def test_factor_codes_are_unique_unless_replaced():
    with pytest.raises(ValueError, match="already registered"):
        register_factor(risk_base.registered_factors()[0].__class__())
    with pytest.raises(ValueError, match="strength"):
        Signal(1.5)


# -- the cap under concurrent requests -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_daily_cap_holds_under_concurrent_requests(brand_a, card_method, currencies):
    RiskPolicy.objects.create(
        brand=brand_a,
        currency_id="EUR",
        auto_pay_max_amount=50_000,
        daily_auto_pay_cap=100_000,
        kyc2_limit=100_000,
    )
    from .conftest import seasoned_player

    players = [seasoned_player(brand_a, card_method) for _ in range(6)]
    barrier = threading.Barrier(len(players))
    errors = []

    def request(player):
        from payments.services.payments import do_request_withdrawal

        try:
            barrier.wait(timeout=10)
            do_request_withdrawal(
                player, method=card_method, amount=30_000, instrument="VISA •••• 4242"
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(p,)) for p in players]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    auto = RiskAssessment.objects.filter(auto_paid=True).count()
    assert auto == 3  # 3 × 300.00 fit in 1,000.00; a fourth would not
    usage = AutoPayUsage.objects.get()
    assert (usage.used_amount, usage.used_count) == (90_000, 3)
    capped = RiskAssessment.objects.filter(reasons__contains=["daily_cap_reached"]).count()
    assert capped == 3


# -- policies and limits ---------------------------------------------------------------------


VALUES = {
    "review_score": 25,
    "manual_score": 60,
    "auto_pay_max_amount": 10_000,
    "daily_auto_pay_cap": 50_000,
    "approver_limit": None,
    "kyc0_limit": 0,
    "kyc1_limit": 5_000,
    "kyc2_limit": 50_000,
}


def test_a_lead_sets_a_policy_and_the_change_is_audited(make_staff, brand_a, brand_b):
    lead = make_staff("Payments")
    policy = do_save_risk_policy(
        brand_id=brand_a.pk, currency="EUR", values=VALUES, reason="Launch", acting_user=lead
    )
    changed = {**VALUES, "daily_auto_pay_cap": 80_000}
    do_save_risk_policy(
        brand_id=brand_a.pk, currency="EUR", values=changed, reason="More volume", acting_user=lead
    )
    policy.refresh_from_db()
    assert policy.daily_auto_pay_cap == 80_000
    event = AuditEvent.objects.filter(action="payments.risk_policy.changed").get()
    assert (
        event.before["daily_auto_pay_cap"] == 50_000 and event.after["daily_auto_pay_cap"] == 80_000
    )
    assert event.reason == "More volume"
    assert [h.history_change_reason for h in policy.history.order_by("history_id")] == [
        "Launch",
        "More volume",
    ]
    with pytest.raises(PaymentsError, match="manual threshold cannot be below"):
        do_save_risk_policy(
            brand_id=brand_a.pk,
            currency="EUR",
            values={**VALUES, "manual_score": 10},
            reason="x",
            acting_user=lead,
        )
    with pytest.raises(PermissionDenied):
        do_save_risk_policy(
            brand_id=brand_b.pk, currency="EUR", values=VALUES, reason="x", acting_user=lead
        )
    with pytest.raises(PermissionDenied):
        do_save_risk_policy(
            brand_id=brand_a.pk,
            currency="EUR",
            values=VALUES,
            reason="x",
            acting_user=make_staff("Risk"),
        )


def test_nobody_sets_their_own_approval_limit(make_staff):
    lead, other = make_staff("Payments"), make_staff("Payments")
    with pytest.raises(PermissionDenied, match="own approval limit"):
        do_set_approver_limit(user=lead, currency="EUR", amount=10, reason="x", acting_user=lead)
    row = do_set_approver_limit(
        user=other, currency="EUR", amount=1_000, reason="Junior", acting_user=lead
    )
    assert row.amount == 1_000
    assert (
        do_set_approver_limit(
            user=other, currency="EUR", amount=None, reason="Promoted", acting_user=lead
        )
        is None
    )
    assert AuditEvent.objects.filter(action="payments.approver_limit.changed").count() == 2


def test_an_auto_pay_is_never_sent_twice(
    policy, make_player, withdraw, django_capture_on_commit_callbacks
):
    from payments.services.payments import do_send_payout

    with django_capture_on_commit_callbacks(execute=True):
        w = withdraw(make_player(), 10_000)
    assert do_send_payout(w.pk) is None  # a retry of the task finds it sent
    assert PayoutAttempt.objects.filter(withdrawal=w).count() == 1
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        PayoutAttempt.objects.create(
            withdrawal=w, brand_id=w.brand_id, number=2, attempt_key=f"{w.reference}-1"
        )
    assert timezone.now() - PayoutAttempt.objects.get().created_at < timedelta(minutes=5)
