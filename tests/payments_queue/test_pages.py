"""The queue pages: the list with counts and filters (query-count guarded), htmx actions in
place, the review page, bulk approval and the risk policy pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from payments.models import (
    PaymentStatus,
    RiskAssessment,
    RiskPath,
    RiskPolicy,
    Withdrawal,
    WithdrawalReview,
)

S = PaymentStatus
pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def lead(make_staff):
    return make_staff("Payments")


@pytest.fixture
def waiting(make_player, withdraw):
    """Five withdrawals waiting (no policy: all on the review path), one made manual."""
    rows = [withdraw(make_player(), 10_000 + i) for i in range(5)]
    RiskAssessment.objects.filter(pk=rows[0].pk).update(
        path=RiskPath.MANUAL, score=80, reasons=["risk_flags"]
    )
    return rows


def test_the_queue_lists_waiting_withdrawals_in_few_queries(
    waiting, lead, client_for, django_assert_max_num_queries
):
    client = client_for(lead)
    url = reverse("payments:withdrawal_queue")
    client.get(url)  # warm the session and permission caches
    with django_assert_max_num_queries(10):
        response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    for w in waiting:
        assert w.reference in body
    assert "Manual (two approvers)" in body
    assert "No risk policy for this brand and currency" in body  # the path's own reason
    counts = response.context["counts"]
    assert counts["total"] == 5
    review_row = next(r for r in counts["rows"] if r["path"] == "review")
    assert review_row["total"] == 4 and dict(review_row["cells"])["lt1h"] == 4
    # The query count does not grow with the rows.
    from tests.payments_queue.conftest import seasoned_player

    for _ in range(10):
        w = Withdrawal.objects.get(pk=waiting[1].pk)
        from payments.services.payments import do_request_withdrawal

        do_request_withdrawal(
            seasoned_player(w.brand, w.method),
            method=w.method,
            amount=5_000,
            instrument="VISA •••• 4242",
        )
    with django_assert_max_num_queries(10):
        assert client.get(url).status_code == 200


def test_the_counts_badges_and_row_count_match_the_queue(
    waiting, lead, make_staff, client_for, settings, django_assert_max_num_queries
):
    from payments.services.queue import (
        do_approve_queued_withdrawal,
        do_claim_withdrawal,
        do_hold_queued_withdrawal,
    )

    other = make_staff("Payments")
    do_claim_withdrawal(waiting[1].pk, acting_user=lead)
    do_hold_queued_withdrawal(
        waiting[2].pk,
        acting_user=other,
        reason_code="aml_check",
        follow_up_at=timezone.now() + timedelta(hours=1),
    )
    WithdrawalReview.objects.filter(pk=waiting[2].pk).update(
        follow_up_at=timezone.now() - timedelta(minutes=5)
    )
    do_approve_queued_withdrawal(waiting[0].pk, acting_user=other)  # manual: first of two
    client = client_for(lead)
    url = reverse("payments:withdrawal_queue")
    client.get(url)
    with django_assert_max_num_queries(10):
        response = client.get(url)
    counts = response.context["counts"]
    assert (counts["total"], counts["capped"]) == (5, False)
    assert (counts["mine"], counts["unassigned"], counts["follow_up_due"]) == (1, 3, 1)
    body = response.content.decode()
    for badge, n in (("total", 5), ("mine", 1), ("unassigned", 3), ("follow-up", 1)):
        assert f'id="wq-tab-{badge}">{n}</span>' in body
    assert '<span class="me-auto" id="row-count">5 rows</span>' in body
    assert f"First approval by {other.username}: waiting for a second" in body
    assert (
        f'<div id="wd-assignee-{waiting[2].pk}" class="text-nowrap">{other.username}</div>' in body
    )
    assert f'<div id="wd-assignee-{waiting[1].pk}" class="text-nowrap"><strong>You' in body
    # Filtered: the row count is the filtered rows', from the same counting query.
    with django_assert_max_num_queries(10):
        manual = client.get(url, {"path": "manual", "amount_min": "1", "currency": "EUR"})
    assert (manual.context["row_count"], manual.context["row_count_capped"]) == (1, False)
    assert manual.context["counts"]["total"] == 5  # the counts card stays the whole queue
    assert client.get(url, {"queue": "follow_up"}).context["row_count"] == 1
    # Past the counting limit the total says so, and a filtered count is bounded on its own.
    settings.LIST_COUNT_LIMIT = 3
    capped = client.get(url)
    assert (capped.context["counts"]["total"], capped.context["counts"]["capped"]) == (3, True)
    body = capped.content.decode()
    assert 'id="wq-tab-total">3+</span>' in body and "More than 3 rows" in body
    assert client.get(url, {"path": "manual"}).context["row_count"] == 1
    assert client.get(url, {"path": "review"}).context["row_count_capped"] is True


def test_a_payments_user_without_brands_sees_an_empty_queue(waiting, make_staff, client_for):
    response = client_for(make_staff("Payments", brands=[])).get(
        reverse("payments:withdrawal_queue")
    )
    assert response.status_code == 200
    counts = response.context["counts"]
    assert (counts["total"], counts["mine"], counts["unassigned"]) == (0, 0, 0)
    assert response.context["row_count"] == 0
    assert "No withdrawal waits for a decision here" in response.content.decode()


def test_filters_by_path_reason_amount_and_mine(waiting, lead, client_for):
    client = client_for(lead)
    url = reverse("payments:withdrawal_queue")
    manual = client.get(url, {"path": "manual"}).context["table"].data.data
    assert [w.pk for w in manual] == [waiting[0].pk]
    reason = client.get(url, {"reason": "risk_flags"}).context["table"].data.data
    assert [w.pk for w in reason] == [waiting[0].pk]
    rich = client.get(url, {"amount_min": "100.03", "currency": "EUR"}).context["table"].data.data
    assert sorted(w.pk for w in rich) == sorted(w.pk for w in waiting[3:])
    from payments.services.queue import do_claim_withdrawal

    do_claim_withdrawal(waiting[2].pk, acting_user=lead)
    mine = client.get(url, {"queue": "mine"}).context["table"].data.data
    assert [w.pk for w in mine] == [waiting[2].pk]
    unassigned = client.get(url, {"queue": "unassigned"}).context["table"].data.data
    assert waiting[2].pk not in {w.pk for w in unassigned} and len(unassigned) == 4


def test_late_withdrawals_are_highlighted(waiting, lead, client_for):
    Withdrawal.objects.filter(pk=waiting[1].pk).update(
        created_at=timezone.now() - timedelta(hours=5)
    )
    body = client_for(lead).get(reverse("payments:withdrawal_queue")).content.decode()
    late = f'class="sla-breached odd" data-withdrawal="{waiting[1].pk}"'
    assert late in body.replace("even", "odd") and "· late" in body


def test_claim_and_approve_in_place_with_htmx(
    waiting, lead, make_staff, client_for, django_capture_on_commit_callbacks
):
    client = client_for(lead)
    w = waiting[1]
    response = client.post(reverse("payments:withdrawal_claim", args=[w.pk]), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="wd-actions-{w.pk}"' in body and 'hx-swap-oob="true"' in body
    assert "is yours" in body and "<strong>You</strong>" in body
    other = client_for(make_staff("Payments"))
    refused = other.post(reverse("payments:withdrawal_approve", args=[w.pk]), **HTMX)
    assert f"claimed by {lead.username}" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("payments:withdrawal_approve", args=[w.pk]), **HTMX)
    assert "approved: the payout goes to the PSP" in done.content.decode()
    assert Withdrawal.objects.get(pk=w.pk).status == S.SENT_TO_PSP


def test_hold_and_reject_forms_open_in_the_row(waiting, lead, client_for):
    client = client_for(lead)
    w = waiting[2]
    form = client.get(reverse("payments:withdrawal_hold", args=[w.pk]), **HTMX)
    assert f'id="wd{w.pk}_reason_code"' in form.content.decode()
    bad = client.post(reverse("payments:withdrawal_hold", args=[w.pk]), {"reason_code": ""}, **HTMX)
    assert "This field is required" in bad.content.decode()
    follow_up = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    held = client.post(
        reverse("payments:withdrawal_hold", args=[w.pk]),
        {"reason_code": "aml_check", "follow_up_at": follow_up, "note": "SoF"},
        **HTMX,
    )
    assert "held (AML check)" in held.content.decode()
    assert WithdrawalReview.objects.get(pk=w.pk).hold_reason == "aml_check"
    rejected = client.post(
        reverse("payments:withdrawal_reject", args=[w.pk]),
        {"reason_code": "suspected_fraud", "note": "ring"},
        **HTMX,
    )
    assert "back in the player&#x27;s cash" in rejected.content.decode()
    assert Withdrawal.objects.get(pk=w.pk).status == S.REJECTED


def test_the_review_page_shows_the_factors_and_the_player(
    waiting, lead, client_for, django_assert_max_num_queries
):
    client = client_for(lead)
    url = reverse("payments:withdrawal_review", args=[waiting[0].pk])
    client.get(url)
    with django_assert_max_num_queries(20):
        response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Risk assessment" in body and "KYC level vs amount" in body
    assert "Give the first of two approvals" in body
    assert reverse("players:player_detail", args=[waiting[0].player_id]) in body
    # Without htmx an action redirects back to the page with a message.
    response = client.post(
        reverse("payments:withdrawal_approve", args=[waiting[0].pk]), {"note": "docs"}, follow=True
    )
    body = response.content.decode()
    assert "a second approver must confirm it" in body
    assert f"First approval by {lead.username}" in body
    assert "Give the second approval" in body  # shown, though the same person cannot give it


def test_a_refused_action_on_the_review_page_keeps_the_form(waiting, lead, client_for):
    url = reverse("payments:withdrawal_reject", args=[waiting[1].pk])
    response = client_for(lead).post(url, {"reason_code": "nonsense", "note": "kept"})
    assert response.status_code == 422
    assert "kept" in response.content.decode()


def test_bulk_approve_from_the_queue(waiting, lead, client_for):
    client = client_for(lead)
    ids = [w.pk for w in waiting[1:3]]
    response = client.post(
        reverse("payments:withdrawal_bulk_approve"),
        {"selected": ids, "next": reverse("payments:withdrawal_queue")},
        follow=True,
    )
    assert "2 withdrawals approved" in response.content.decode()
    refused = client.post(
        reverse("payments:withdrawal_bulk_approve"),
        {"selected": [waiting[0].pk, waiting[3].pk]},
        follow=True,
    )
    assert "needs two approvers" in refused.content.decode()
    assert Withdrawal.objects.get(pk=waiting[3].pk).status == S.REQUESTED


def test_a_lead_edits_a_policy_in_the_currencys_units(lead, brand_a, client_for):
    client = client_for(lead)
    response = client.post(
        reverse("payments:risk_policy_create"),
        {
            "brand": brand_a.pk,
            "currency": "EUR",
            "review_score": 30,
            "manual_score": 70,
            "auto_pay_max_amount": "250.00",
            "daily_auto_pay_cap": "5000",
            "approver_limit": "",
            "kyc0_limit": "0",
            "kyc1_limit": "100",
            "kyc2_limit": "1000.50",
            "reason": "Launch",
        },
    )
    assert response.status_code == 302
    policy = RiskPolicy.objects.get()
    assert (policy.auto_pay_max_amount, policy.approver_limit, policy.kyc2_limit) == (
        25_000,
        None,
        100_050,
    )
    page = client.get(reverse("payments:risk_policy_list")).content.decode()
    assert "250.00 EUR" in page and "5,000.00 EUR" in page
    bad = client.post(
        reverse("payments:risk_policy_edit", args=[policy.pk]),
        {
            "review_score": 80,
            "manual_score": 70,
            "auto_pay_max_amount": "1.001",
            "daily_auto_pay_cap": "10",
            "kyc0_limit": "0",
            "kyc1_limit": "0",
            "kyc2_limit": "0",
            "reason": "x",
        },
    )
    assert bad.status_code == 200 and "EUR has 2 decimals" in bad.content.decode()
