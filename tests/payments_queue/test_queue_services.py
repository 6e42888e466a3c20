"""The queue's writes: claims (two at once, one wins), approvals within limits, the manual
path's two distinct approvers, holds with a follow-up, rejections that give the money back,
and bulk approval all or nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from backoffice.exceptions import SelfApprovalRefused
from backoffice.models import ApprovalRequest, AuditEvent
from backoffice.services import do_decide_approval
from payments.exceptions import (
    AboveApprovalLimit,
    ClaimedByOther,
    InvalidTransition,
    PaymentsError,
)
from payments.models import (
    ApproverLimit,
    PaymentStatus,
    RiskAssessment,
    RiskPath,
    Withdrawal,
    WithdrawalReview,
)
from payments.services import ledger
from payments.services.queue import (
    MANUAL_APPROVAL_ACTION,
    do_approve_queued_withdrawal,
    do_bulk_approve_withdrawals,
    do_claim_withdrawal,
    do_hold_queued_withdrawal,
    do_reject_queued_withdrawal,
    do_release_withdrawal,
)

S = PaymentStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def payments_staff(make_staff):
    return make_staff("Payments"), make_staff("Payments")


@pytest.fixture
def review_withdrawal(make_player, withdraw):
    """A withdrawal on the review path (no policy: nothing auto-pays)."""

    def make(amount=20_000, **kwargs):
        w = withdraw(make_player(**kwargs), amount)
        assert RiskAssessment.objects.get(pk=w.pk).path == RiskPath.REVIEW
        return w

    return make


def manual(w):
    RiskAssessment.objects.filter(pk=w.pk).update(path=RiskPath.MANUAL, reasons=["risk_flags"])
    return w


def status(w) -> str:
    return Withdrawal.objects.get(pk=w.pk).status


def cash(w) -> int:
    return ledger.get_wallet(w.player, "EUR")["cash"].balance


# -- claims -----------------------------------------------------------------------------------


def test_a_claimed_withdrawal_is_only_worked_by_its_holder(review_withdrawal, payments_staff):
    alice, bob = payments_staff
    w = review_withdrawal()
    do_claim_withdrawal(w.pk, acting_user=alice)
    do_claim_withdrawal(w.pk, acting_user=alice)  # again: no-op
    with pytest.raises(ClaimedByOther, match=f"claimed by {alice.username}"):
        do_claim_withdrawal(w.pk, acting_user=bob)
    with pytest.raises(ClaimedByOther):
        do_approve_queued_withdrawal(w.pk, acting_user=bob)
    with pytest.raises(ClaimedByOther):
        do_release_withdrawal(w.pk, acting_user=make_risk_staff(bob))
    do_release_withdrawal(w.pk, acting_user=alice)
    do_claim_withdrawal(w.pk, acting_user=bob)
    assert WithdrawalReview.objects.get(pk=w.pk).assignee == bob
    assert AuditEvent.objects.filter(action="payments.withdrawal.claimed").count() == 2
    review = WithdrawalReview.objects.get(pk=w.pk)
    assert [h.history_change_reason for h in review.history.order_by("history_id")] == [
        None,
        "claimed",
        "released",
        "claimed",
    ]


def make_risk_staff(user):
    """The same person without the lead's permission (a Risk analyst)."""
    from django.contrib.auth.models import Group

    user.groups.set([Group.objects.get(name="Risk")])
    from backoffice.scoping import forget_brand_cache

    forget_brand_cache(user)
    return user


@pytest.mark.django_db(transaction=True)
def test_two_people_claiming_at_once_one_wins(brand_a, card_method, currencies, make_staff):
    from payments.services.payments import do_request_withdrawal

    from .conftest import CARD, seasoned_player

    w = do_request_withdrawal(
        seasoned_player(brand_a, card_method), method=card_method, amount=10_000, instrument=CARD
    )
    people = [make_staff("Payments"), make_staff("Risk")]
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def claim(user):
        try:
            barrier.wait(timeout=10)
            do_claim_withdrawal(w.pk, acting_user=user)
            results[user.username] = "won"
        except ClaimedByOther:
            results[user.username] = "lost"
        except Exception as exc:  # pragma: no cover - reported below
            results[user.username] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results.values()) == ["lost", "won"]
    winner = next(u for u in people if results[u.username] == "won")
    assert WithdrawalReview.objects.get(pk=w.pk).assignee_id == winner.pk


# -- approvals ---------------------------------------------------------------------------------


def test_one_approver_is_enough_on_the_review_path(
    review_withdrawal, payments_staff, django_capture_on_commit_callbacks
):
    alice, _ = payments_staff
    w = review_withdrawal()
    with django_capture_on_commit_callbacks(execute=True):
        decision = do_approve_queued_withdrawal(w.pk, acting_user=alice, note="Known player")
    assert decision.outcome == "approved" and status(w) == S.SENT_TO_PSP
    assert WithdrawalReview.objects.get(pk=w.pk).assignee == alice
    with pytest.raises(InvalidTransition, match="no longer waits"):
        do_approve_queued_withdrawal(w.pk, acting_user=alice)


def test_a_high_risk_withdrawal_needs_two_distinct_approvers(
    review_withdrawal, payments_staff, make_staff, django_capture_on_commit_callbacks
):
    alice, bob = payments_staff
    w = manual(review_withdrawal())
    first = do_approve_queued_withdrawal(w.pk, acting_user=alice, note="Docs checked")
    assert first.outcome == "first" and status(w) == S.REQUESTED
    req = first.approval
    assert (req.action, req.requested_by, req.status) == (MANUAL_APPROVAL_ACTION, alice, "pending")
    assert WithdrawalReview.objects.get(pk=w.pk).assignee is None  # free for the second
    with pytest.raises(PermissionDenied, match="second, different approver"):
        do_approve_queued_withdrawal(w.pk, acting_user=alice)
    with pytest.raises(SelfApprovalRefused):
        do_decide_approval(req.pk, acting_user=alice, approve=True)
    with pytest.raises(PermissionDenied):  # Risk may hold, not approve
        do_approve_queued_withdrawal(w.pk, acting_user=make_staff("Risk"))
    assert status(w) == S.REQUESTED
    with django_capture_on_commit_callbacks(execute=True):
        second = do_approve_queued_withdrawal(w.pk, acting_user=bob, note="Agreed")
    assert second.outcome == "approved" and status(w) == S.SENT_TO_PSP
    req.refresh_from_db()
    assert (req.status, req.decided_by) == (ApprovalRequest.Status.APPROVED, bob)
    approved = Withdrawal.objects.get(pk=w.pk).transitions.get(to_status="approved")
    assert approved.actor == bob


def test_the_second_approval_can_come_from_the_approvals_page(review_withdrawal, payments_staff):
    alice, bob = payments_staff
    w = manual(review_withdrawal())
    req = do_approve_queued_withdrawal(w.pk, acting_user=alice, note="First").approval
    do_decide_approval(req.pk, acting_user=bob, approve=True, note="Second")
    assert status(w) == S.APPROVED


def test_approvals_stay_within_the_approvers_limit(review_withdrawal, payments_staff, policy):
    alice, bob = payments_staff
    w = review_withdrawal(amount=60_000, deposit=200_000)  # above auto-pay: review
    ApproverLimit.objects.create(user=alice, currency_id="EUR", amount=50_000)
    with pytest.raises(AboveApprovalLimit, match="above your approval limit of 500.00 EUR"):
        do_approve_queued_withdrawal(w.pk, acting_user=alice)
    assert status(w) == S.REQUESTED
    policy.approver_limit = 50_000
    policy.save()
    with pytest.raises(AboveApprovalLimit, match="approval limit of 500.00 EUR for one approver"):
        do_approve_queued_withdrawal(w.pk, acting_user=bob)
    ApproverLimit.objects.create(user=bob, currency_id="EUR", amount=100_000)
    assert do_approve_queued_withdrawal(w.pk, acting_user=bob).outcome == "approved"


# -- hold and reject ---------------------------------------------------------------------------


def test_hold_with_a_reason_and_a_follow_up(review_withdrawal, make_staff):
    risk = make_staff("Risk")
    w = review_withdrawal()
    follow_up = timezone.now() + timedelta(hours=4)
    with pytest.raises(PaymentsError, match="reason code"):
        do_hold_queued_withdrawal(w.pk, acting_user=risk, reason_code="", follow_up_at=follow_up)
    with pytest.raises(PaymentsError, match="future"):
        do_hold_queued_withdrawal(
            w.pk,
            acting_user=risk,
            reason_code="aml_check",
            follow_up_at=timezone.now() - timedelta(minutes=1),
        )
    review = do_hold_queued_withdrawal(
        w.pk,
        acting_user=risk,
        reason_code="aml_check",
        note="Source of funds",
        follow_up_at=follow_up,
    )
    assert (review.hold_reason, review.follow_up_at, review.assignee) == (
        "aml_check",
        follow_up,
        risk,
    )
    w.refresh_from_db()
    assert (w.status, w.status_reason) == (S.IN_REVIEW, "aml_check")
    later = follow_up + timedelta(days=1)
    review = do_hold_queued_withdrawal(
        w.pk, acting_user=risk, reason_code="suspected_fraud", follow_up_at=later
    )
    assert review.follow_up_at == later
    assert AuditEvent.objects.filter(action="payments.withdrawal.held").count() == 2


def test_reject_gives_the_money_back_and_closes_a_waiting_first_approval(
    review_withdrawal, payments_staff
):
    alice, bob = payments_staff
    w = manual(review_withdrawal())
    before = cash(w)
    req = do_approve_queued_withdrawal(w.pk, acting_user=alice, note="First").approval
    with pytest.raises(PaymentsError, match="reason code"):
        do_reject_queued_withdrawal(w.pk, acting_user=bob, reason_code="nonsense")
    rejected = do_reject_queued_withdrawal(
        w.pk, acting_user=bob, reason_code="suspected_fraud", note="Ring"
    )
    assert rejected.status == S.REJECTED and cash(w) == before + 20_000
    req.refresh_from_db()
    assert (req.status, req.decided_by) == (ApprovalRequest.Status.REJECTED, bob)


# -- bulk ----------------------------------------------------------------------------------------


def test_bulk_approve_is_all_or_nothing(review_withdrawal, payments_staff, policy):
    alice, bob = payments_staff
    a, b, c = (review_withdrawal(amount=60_000, deposit=100_000) for _ in range(3))
    do_claim_withdrawal(c.pk, acting_user=bob)
    with pytest.raises(PaymentsError, match=f"{c.reference} is claimed by {bob.username}"):
        do_bulk_approve_withdrawals([a.pk, b.pk, c.pk], acting_user=alice)
    manual(b)
    with pytest.raises(PaymentsError, match=f"{b.reference} needs two approvers"):
        do_bulk_approve_withdrawals([a.pk, b.pk], acting_user=alice)
    assert {status(x) for x in (a, b, c)} == {S.REQUESTED}
    RiskAssessment.objects.filter(pk=b.pk).update(path=RiskPath.REVIEW)
    ApproverLimit.objects.create(user=alice, currency_id="EUR", amount=100_000)
    with pytest.raises(AboveApprovalLimit, match="1,200.00 EUR is above your approval limit"):
        do_bulk_approve_withdrawals([a.pk, b.pk], acting_user=alice)
    assert {status(x) for x in (a, b)} == {S.REQUESTED}
    ApproverLimit.objects.filter(user=alice).update(amount=150_000)
    approved = do_bulk_approve_withdrawals([b.pk, a.pk], acting_user=alice, note="Batch")
    assert [w.status for w in approved] == [S.APPROVED, S.APPROVED]
    event = AuditEvent.objects.get(action="payments.withdrawal.bulk_approved")
    assert event.after == {"references": [a.reference, b.reference]}  # locked in id order
