"""Four eyes: the services' rules (never your own, exactly once, all or nothing, in scope) and the
queue, detail and decision pages built on them."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.urls import reverse

from backoffice.approvals import register_action
from backoffice.audit import record_event
from backoffice.exceptions import ApprovalNotPending, SelfApprovalRefused
from backoffice.models import ApprovalRequest, AuditEvent
from backoffice.services import (
    can_decide,
    do_cancel_approval,
    do_decide_approval,
    do_request_approval,
)

executed: list[int] = []
contended_runs: list[int] = []  # requests whose executor saw the other approver blocked behind it

GRANT = "tests.approvals.grant"
COMPLIANCE_ONLY = "tests.approvals.compliance_only"
CONTENDED = "tests.approvals.contended"


@register_action(
    GRANT,
    label="Test: grant a goodwill credit",
    permission="backoffice.decide_approvalrequest",
    describe=lambda p: f"Grant {p['amount']} to {p['player']}",
)
def _grant(payload, *, request, acting_user):
    """Test-only action: records that it ran, fails on demand after writing."""
    executed.append(request.pk)
    record_event("tests.approvals.executed", actor=acting_user, subject=request)
    if payload.get("fail"):
        raise RuntimeError("The wallet refused the credit.")
    return {"credited": payload["amount"]}


@register_action(
    COMPLIANCE_ONLY, label="Test: compliance only", permission="backoffice.export_auditevent"
)
def _compliance_only(payload, *, request, acting_user):
    executed.append(request.pk)
    return None


@register_action(CONTENDED, label="Test: contended", permission="backoffice.decide_approvalrequest")
def _contended(payload, *, request, acting_user):
    """Holds the request's row lock until the other approver is queued behind it, so the race
    is real whichever thread wins (bounded: it goes on after 10 s regardless)."""
    executed.append(request.pk)
    record_event("tests.approvals.executed", actor=acting_user, subject=request)
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # pg_stat_activity is read once per transaction and kept: drop that snapshot, or a
            # loser that queues after the first look is never seen.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                contended_runs.append(request.pk)
                break
            time.sleep(0.02)
    return {"ok": True}


@pytest.fixture(autouse=True)
def _clear_executed():
    executed.clear()
    contended_runs.clear()


@pytest.fixture
def requester(make_staff):
    return make_staff("Payments", username="riley")


@pytest.fixture
def approver(make_staff):
    return make_staff("Risk", username="avery")


@pytest.fixture
def pending(requester, brand_a):
    return do_request_approval(
        GRANT,
        {"amount": 5000, "player": "P0000001"},
        acting_user=requester,
        reason="Player waited three days for a payout.",
        brand=brand_a,
    )


def url(name: str, req) -> str:
    return reverse(f"backoffice:{name}", kwargs={"pk": req.pk})


# --- services ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_request_is_pending_with_summary_and_audit_event(pending, requester):
    assert pending.status == ApprovalRequest.Status.PENDING
    assert pending.summary == "Grant 5000 to P0000001"
    event = AuditEvent.objects.get(action="approval.requested")
    assert (event.actor, event.object_id, event.brand_id) == (
        requester,
        str(pending.pk),
        pending.brand_id,
    )


@pytest.mark.django_db
def test_reason_is_required(requester, brand_a):
    with pytest.raises(ValueError, match="reason"):
        do_request_approval(GRANT, {}, acting_user=requester, reason="  ", brand=brand_a)
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_self_approval_is_refused(pending, requester):
    assert requester.has_perm("backoffice.decide_approvalrequest")
    assert not can_decide(requester, pending)
    with pytest.raises(SelfApprovalRefused):
        do_decide_approval(pending.pk, acting_user=requester, approve=True)
    pending.refresh_from_db()
    assert pending.status == ApprovalRequest.Status.PENDING
    assert executed == []


@pytest.mark.django_db
def test_second_user_approves_and_the_action_runs_exactly_once(pending, approver):
    decided = do_decide_approval(pending.pk, acting_user=approver, approve=True, note="ok")
    assert executed == [pending.pk]
    assert decided.status == ApprovalRequest.Status.APPROVED
    assert decided.result == {"credited": 5000}
    assert decided.decided_by == approver
    with pytest.raises(ApprovalNotPending):
        do_decide_approval(pending.pk, acting_user=approver, approve=True)
    assert executed == [pending.pk]
    assert AuditEvent.objects.filter(action="tests.approvals.executed").count() == 1
    approved = AuditEvent.objects.get(action="approval.approved")
    assert approved.after["status"] == "approved" and approved.reason == "ok"
    history = list(pending.history.order_by("history_id"))
    assert [h.status for h in history] == ["pending", "approved"]
    assert history[-1].history_user == approver


@pytest.mark.django_db
def test_failing_action_rolls_the_decision_back(requester, approver, brand_a):
    req = do_request_approval(
        GRANT,
        {"amount": 1, "player": "P1", "fail": True},
        acting_user=requester,
        reason="r",
        brand=brand_a,
    )
    with pytest.raises(RuntimeError, match="refused"):
        do_decide_approval(req.pk, acting_user=approver, approve=True)
    req.refresh_from_db()
    assert req.status == ApprovalRequest.Status.PENDING and req.decided_by is None
    assert executed == [req.pk]  # it ran, and what it wrote went with the rollback:
    assert not AuditEvent.objects.filter(action="tests.approvals.executed").exists()
    assert not AuditEvent.objects.filter(action="approval.approved").exists()
    assert req.history.count() == 1


@pytest.mark.django_db
def test_reject_does_not_run_the_action(pending, approver):
    do_decide_approval(pending.pk, acting_user=approver, approve=False, note="No evidence.")
    pending.refresh_from_db()
    assert pending.status == ApprovalRequest.Status.REJECTED
    assert pending.decision_note == "No evidence."
    assert executed == []


@pytest.mark.django_db
def test_requester_lacking_scope_cannot_ask(requester, brand_b):
    with pytest.raises(PermissionDenied):
        do_request_approval(GRANT, {}, acting_user=requester, reason="r", brand=brand_b)
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_approver_outside_the_brand_cannot_decide(pending, make_staff, brand_b):
    outsider = make_staff("Risk", brands=[brand_b])
    assert not can_decide(outsider, pending)
    with pytest.raises(PermissionDenied):
        do_decide_approval(pending.pk, acting_user=outsider, approve=True)
    assert executed == []


@pytest.mark.django_db
def test_approver_needs_the_actions_own_permission(requester, make_staff, brand_a):
    req = do_request_approval(COMPLIANCE_ONLY, {}, acting_user=requester, reason="r", brand=brand_a)
    risk, compliance = make_staff("Risk"), make_staff("Compliance")
    assert not can_decide(risk, req) and can_decide(compliance, req)
    with pytest.raises(PermissionDenied):
        do_decide_approval(req.pk, acting_user=risk, approve=True)
    do_decide_approval(req.pk, acting_user=compliance, approve=True)
    assert executed == [req.pk]


@pytest.mark.django_db
def test_only_the_requester_cancels(pending, requester, approver):
    with pytest.raises(PermissionDenied):
        do_cancel_approval(pending.pk, acting_user=approver)
    do_cancel_approval(pending.pk, acting_user=requester, note="Paid by hand.")
    pending.refresh_from_db()
    assert pending.status == ApprovalRequest.Status.CANCELLED
    with pytest.raises(ApprovalNotPending):
        do_decide_approval(pending.pk, acting_user=approver, approve=True)
    assert executed == []


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_the_same_moment_run_the_action_once(make_staff, brand_a):
    requester = make_staff("Payments", username="riley")
    first, second = make_staff("Risk", username="avery"), make_staff("Compliance", username="cam")
    req = do_request_approval(CONTENDED, {}, acting_user=requester, reason="r", brand=brand_a)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(user):
        try:
            barrier.wait(timeout=10)
            do_decide_approval(req.pk, acting_user=user, approve=True)
            outcomes[user.username] = "approved"
        except Exception as exc:  # noqa: BLE001 - the test reads what each thread got
            outcomes[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(u,)) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)

    results = sorted(outcomes.values(), key=str)
    assert len(results) == 2
    assert sum(1 for r in results if r == "approved") == 1
    losers = [r for r in results if r != "approved"]
    assert len(losers) == 1 and isinstance(losers[0], ApprovalNotPending)
    assert contended_runs == [req.pk]  # the loser really was waiting on the row lock
    assert executed == [req.pk]
    assert AuditEvent.objects.filter(action="tests.approvals.executed").count() == 1
    assert AuditEvent.objects.filter(action="approval.approved").count() == 1
    req.refresh_from_db()
    assert req.status == ApprovalRequest.Status.APPROVED
    assert req.decided_by.username == next(k for k, v in outcomes.items() if v == "approved")


# --- pages ------------------------------------------------------------------------------------

pages = pytest.mark.django_db
LIST = reverse("backoffice:approval_list")


def shown(response) -> set[int]:
    return {row.record.pk for row in response.context["table"].paginated_rows}


@pages
def test_queue_shows_pending_by_default_and_filters_by_status(
    pending, approver, requester, client_for, brand_a
):
    done = do_request_approval(
        GRANT, {"amount": 1, "player": "x"}, acting_user=requester, reason="r", brand=brand_a
    )
    do_decide_approval(done.pk, acting_user=approver, approve=False, note="no")
    client = client_for(approver)
    response = client.get(LIST)
    assert shown(response) == {pending.pk}
    assert 'data-status="pending">Pending</span>' in response.content.decode()
    assert shown(client.get(LIST, {"status": "rejected"})) == {done.pk}
    assert shown(client.get(LIST, {"status": ""})) == {pending.pk, done.pk}


@pages
def test_queue_filters_by_action_brand_and_requester(
    pending, requester, approver, make_staff, client_for, brand_a
):
    other = do_request_approval(
        COMPLIANCE_ONLY, {}, acting_user=approver, reason="r", brand=brand_a
    )
    staff_wide = do_request_approval(
        GRANT, {"amount": 2, "player": "y"}, acting_user=approver, reason="r"
    )
    client = client_for(make_staff("Compliance"))
    assert shown(client.get(LIST, {"action": COMPLIANCE_ONLY})) == {other.pk}
    assert shown(client.get(LIST, {"requested_by": requester.username})) == {pending.pk}
    assert shown(client.get(LIST, {"brand": brand_a.pk})) == {pending.pk, other.pk}
    assert shown(client.get(LIST, {"brand": "null"})) == {staff_wide.pk}


@pages
def test_waiting_for_me_is_what_i_can_decide(pending, requester, approver, client_for, brand_a):
    mine = do_request_approval(
        GRANT, {"amount": 3, "player": "z"}, acting_user=approver, reason="r", brand=brand_a
    )
    not_my_role = do_request_approval(
        COMPLIANCE_ONLY, {}, acting_user=requester, reason="r", brand=brand_a
    )
    response = client_for(approver).get(LIST, {"waiting": "1"})
    assert shown(response) == {pending.pk}
    assert mine.pk not in shown(response) and not_my_role.pk not in shown(response)
    assert shown(client_for(approver).get(LIST, {"waiting": "on"})) == {pending.pk}


@pages
def test_queue_is_scoped_to_brands(pending, make_staff, client_for, brand_b):
    assert shown(client_for(make_staff("Risk", brands=[brand_b])).get(LIST)) == set()


@pages
def test_queue_rows_offer_decisions_only_to_deciders(
    pending, approver, requester, make_staff, client_for
):
    html = client_for(approver).get(LIST).content.decode()
    assert url("approval_approve", pending) in html
    html = client_for(requester).get(LIST).content.decode()
    assert url("approval_approve", pending) not in html and url("approval_cancel", pending) in html
    html = client_for(make_staff("Support")).get(LIST).content.decode()
    assert url("approval_approve", pending) not in html and "Waiting for another approver" in html


@pages
def test_queue_query_count_is_bounded(
    requester, approver, client_for, brand_a, django_assert_max_num_queries
):
    for i in range(30):
        do_request_approval(
            GRANT,
            {"amount": i, "player": f"P{i}"},
            acting_user=requester,
            reason="r",
            brand=brand_a,
        )
    client = client_for(approver)
    client.get(LIST)  # warm the session and the content types
    with django_assert_max_num_queries(18):
        response = client.get(LIST)
    assert len(shown(response)) == 30


@pages
def test_detail_renders_the_payload_readably(pending, approver, client_for):
    response = client_for(approver).get(url("approval_detail", pending))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Test: grant a goodwill credit" in html
    assert "Player waited three days for a payout." in html
    assert {r["key"]: r["value"] for r in response.context["payload"]} == {
        "Amount": "5000",
        "Player": "P0000001",
    }
    assert response.context["can_decide"]
    assert [h.status for h in response.context["history"]] == ["pending"]


@pages
def test_detail_out_of_scope_is_404(pending, make_staff, client_for, brand_b):
    client = client_for(make_staff("Risk", brands=[brand_b]))
    assert client.get(url("approval_detail", pending)).status_code == 404
    assert client.post(url("approval_approve", pending)).status_code == 404
    assert executed == []


@pages
def test_approve_from_the_page_redirects_with_a_message(pending, approver, client_for):
    client = client_for(approver)
    response = client.post(url("approval_approve", pending), {"note": "Fine."}, follow=True)
    assert response.redirect_chain[-1][0] == url("approval_detail", pending)
    assert "Approved #" in response.content.decode()
    pending.refresh_from_db()
    assert (pending.status, pending.decision_note) == ("approved", "Fine.")
    assert executed == [pending.pk]


@pages
def test_approve_returns_to_a_safe_next_only(pending, approver, client_for):
    response = client_for(approver).post(
        url("approval_approve", pending), {"next": "https://evil.example/"}
    )
    assert response["Location"] == url("approval_detail", pending)


@pages
def test_approve_with_htmx_returns_the_row_cell(pending, approver, client_for):
    response = client_for(approver).post(
        url("approval_approve", pending), {"next": LIST}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith(f'<div id="approval-actions-{pending.pk}"')
    assert "Approved #" in html and 'data-status="approved"' in html
    assert "<html" not in html


@pages
def test_self_approval_through_the_page_is_a_clear_message(pending, requester, client_for):
    response = client_for(requester).post(url("approval_approve", pending), follow=True)
    assert "You cannot decide a request you made yourself." in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "pending" and executed == []


@pages
def test_reject_needs_a_note_and_keeps_the_form(pending, approver, client_for):
    client = client_for(approver)
    response = client.post(url("approval_reject", pending), {"note": "   "})
    assert response.status_code == 400
    assert "Say why you reject it" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "pending"
    too_long = "x" * 2001
    response = client.post(url("approval_reject", pending), {"note": too_long})
    assert response.status_code == 400
    assert too_long in response.content.decode()  # what was typed is kept


@pages
def test_reject_from_the_queue_takes_the_htmx_prompt(pending, approver, client_for):
    response = client_for(approver).post(
        url("approval_reject", pending),
        headers={"HX-Request": "true", "HX-Prompt": "Duplicate of #12"},
    )
    assert response.status_code == 200 and "Rejected #" in response.content.decode()
    pending.refresh_from_db()
    assert (pending.status, pending.decision_note) == ("rejected", "Duplicate of #12")


@pages
def test_deciding_twice_is_a_message_not_an_error(pending, approver, make_staff, client_for):
    client_for(approver).post(url("approval_approve", pending))
    response = client_for(make_staff("Compliance")).post(
        url("approval_reject", pending), {"note": "late"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "already approved" in response.content.decode()
    assert executed == [pending.pk]


@pages
def test_roles_that_may_not_decide_get_403(pending, make_staff, client_for):
    for role in ("Auditor", "Support", "Game operations"):
        response = client_for(make_staff(role)).post(url("approval_approve", pending))
        assert response.status_code == 403, role
    assert executed == []


@pages
def test_cancel_by_the_requester_only(pending, requester, approver, client_for):
    response = client_for(approver).post(url("approval_cancel", pending))
    assert response.status_code == 403
    response = client_for(requester).post(url("approval_cancel", pending), {"note": "Done by hand"})
    assert response.status_code == 302
    pending.refresh_from_db()
    assert (pending.status, pending.decision_note) == ("cancelled", "Done by hand")


@pages
def test_decision_urls_take_post_only(pending, approver, client_for):
    client = client_for(approver)
    for name in ("approval_approve", "approval_reject", "approval_cancel"):
        assert client.get(url(name, pending)).status_code == 405


@pages
def test_anonymous_is_sent_to_login(pending, client):
    response = client.post(url("approval_approve", pending))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pages
def test_home_counts_approvals_waiting_for_me(pending, approver, requester, make_staff, client_for):
    counters = {c["key"]: c for c in client_for(approver).get("/").context["counters"]}
    assert counters["approvals_waiting"]["count"] == 1
    assert counters["approvals_waiting"]["url"] == f"{LIST}?waiting=1"
    mine = {c["key"]: c for c in client_for(requester).get("/").context["counters"]}
    assert mine["approvals_waiting"]["count"] == 0  # their own request is not waiting for them
    support = {c["key"] for c in client_for(make_staff("Support")).get("/").context["counters"]}
    assert "approvals_waiting" not in support


@pages
def test_detail_query_count_is_bounded(
    pending, make_staff, client_for, django_assert_max_num_queries
):
    client = client_for(make_staff("Compliance"))  # sees the audit events too
    client.get(url("approval_detail", pending))
    with django_assert_max_num_queries(18):
        response = client.get(url("approval_detail", pending))
    assert [e.action for e in response.context["events"]] == ["approval.requested"]
