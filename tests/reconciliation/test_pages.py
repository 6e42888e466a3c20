"""Reconciliation pages: upload (the Celery job runs inline here), progress, the report's
counts and errors, the exceptions queue, resolving, and proposing a correcting adjustment that
a second person approves."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backoffice.models import ApprovalRequest, AuditEvent
from backoffice.services import do_decide_approval
from payments.models import LedgerTransaction, ReconciliationException, SettlementReport
from payments.reconciliation.report_writer import Plant
from payments.services import ledger

from .conftest import bulk_payments, report_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("celery_inline")]


@pytest.fixture
def payments_user(make_staff):
    return make_staff("Payments")


@pytest.fixture
def done_report(card_psp, player, payments_user, client_for, django_capture_on_commit_callbacks):
    bulk_payments(card_psp, player, 30)
    data, written = report_bytes(
        card_psp, plant=Plant(amount_mismatch=2, missing_ours=1, missing_psp=1), seed=4
    )
    client = client_for(payments_user)
    upload = SimpleUploadedFile("cardpay-2026-03-02.csv", data, content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):  # the Celery job, inline
        response = client.post(
            reverse("payments:reconciliation_upload"), {"psp": card_psp.pk, "file": upload}
        )
    report = SettlementReport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("payments:reconciliation_detail", args=[report.pk])
    return report, written


def test_upload_runs_the_report_and_the_page_shows_the_counts(
    done_report, payments_user, client_for, django_assert_max_num_queries
):
    report, _ = done_report
    report.refresh_from_db()
    assert report.status == "done" and report.uploaded_by == payments_user
    client = client_for(payments_user)
    url = reverse("payments:reconciliation_detail", args=[report.pk])
    client.get(url)
    with django_assert_max_num_queries(15):
        body = client.get(url).content.decode()
    assert "Amount mismatch" in body and f"?report={report.pk}&amp;kind=amount_mismatch" in body
    listing = client.get(reverse("payments:reconciliation_list")).content.decode()
    assert "cardpay-2026-03-02.csv" in listing
    assert AuditEvent.objects.filter(action="payments.reconciliation.uploaded").count() == 1


def test_uploading_the_same_file_again_leads_to_the_same_report(
    done_report, card_psp, payments_user, client_for
):
    report, _ = done_report
    client = client_for(payments_user)
    data = report.file.open("rb").read()
    response = client.post(
        reverse("payments:reconciliation_upload"),
        {"psp": card_psp.pk, "file": SimpleUploadedFile("again.csv", data)},
        follow=True,
    )
    assert "uploaded already as report" in response.content.decode()
    assert SettlementReport.objects.count() == 1


def test_a_running_report_shows_its_progress_and_reloads_when_done(
    card_psp, player, payments_user, client_for
):
    import io

    from django.core.cache import cache

    from payments.reconciliation.runner import progress_key
    from payments.services.reconciliation import do_upload_settlement_report

    bulk_payments(card_psp, player, 3)
    data, _ = report_bytes(card_psp)
    report, _ = do_upload_settlement_report(
        card_psp, stream=io.BytesIO(data), name="r.csv", acting_user=None, enqueue=False
    )
    SettlementReport.objects.filter(pk=report.pk).update(status="running")
    cache.set(progress_key(report.pk), {"phase": "Reading the file", "percent": 42})
    client = client_for(payments_user)
    url = reverse("payments:reconciliation_progress", args=[report.pk])
    body = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Reading the file… 42%" in body and 'aria-valuenow="42"' in body
    SettlementReport.objects.filter(pk=report.pk).update(status="done")
    done = client.get(url, HTTP_HX_REQUEST="true")
    assert done.headers.get("HX-Refresh") == "true"
    cache.delete(progress_key(report.pk))


def test_a_rejected_report_lists_its_lines(
    card_psp, payments_user, client_for, django_capture_on_commit_callbacks
):
    client = client_for(payments_user)
    data = (
        b"id,merchant_reference,type,amount,currency,status,created\n"
        b"ch_1,D-1,payment,12.5,EUR,captured,2026-03-02T10:00:00Z\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("payments:reconciliation_upload"),
            {"psp": card_psp.pk, "file": SimpleUploadedFile("bad.csv", data)},
        )
    report = SettlementReport.objects.get()
    body = client.get(reverse("payments:reconciliation_detail", args=[report.pk])).content.decode()
    assert "Rejected: 1 line with errors. Nothing was imported." in body
    assert "is not a whole number of minor units" in body


def test_the_exceptions_queue_and_resolving_one(
    done_report, payments_user, client_for, django_assert_max_num_queries
):
    client = client_for(payments_user)
    url = reverse("payments:reconciliation_exception_list")
    client.get(url)
    with django_assert_max_num_queries(18):
        response = client.get(url)
    rows = list(response.context["table"].data.data)
    assert len(rows) == 4  # 2 amount, 1 missing on our side, 1 missing in the report
    exc = ReconciliationException.objects.filter(kind="missing_ours").get()
    detail = client.get(reverse("payments:reconciliation_exception_detail", args=[exc.pk]))
    assert "No payment of ours has this PSP reference" in detail.content.decode()
    refused = client.post(
        reverse("payments:reconciliation_exception_resolve", args=[exc.pk]), {"note": ""}
    )
    assert refused.status_code == 422
    client.post(
        reverse("payments:reconciliation_exception_resolve", args=[exc.pk]),
        {"note": "Test payment by the PSP, confirmed by email"},
    )
    exc.refresh_from_db()
    assert (exc.status, exc.resolved_by) == ("resolved", payments_user)
    assert len(client.get(url).context["table"].data.data) == 3
    assert AuditEvent.objects.filter(action="payments.reconciliation.resolved").count() == 1


def test_a_correcting_adjustment_needs_a_second_person(
    done_report, payments_user, make_staff, client_for
):
    exc = ReconciliationException.objects.filter(kind="amount_mismatch").first()
    client = client_for(payments_user)
    page = client.get(reverse("payments:reconciliation_exception_detail", args=[exc.pk]))
    initial = page.context["adjust_form"].initial
    diff = exc.psp_amount - exc.our_amount
    assert initial["player"] == exc.payment.player_id and initial["direction"] == "credit"
    response = client.post(
        reverse("payments:reconciliation_exception_adjust", args=[exc.pk]),
        {
            "player": exc.payment.player_id,
            "balance": "cash",
            "direction": "credit",
            "amount": str(initial["amount"]),
            "reason_code": "correction",
            "note": "PSP settled more than we booked",
        },
    )
    assert response.status_code == 302
    exc.refresh_from_db()
    assert exc.status == "awaiting_approval"
    req = exc.approval
    assert req.status == ApprovalRequest.Status.PENDING and req.payload["amount"] == diff
    wallet = ledger.get_wallet(exc.payment.player, "EUR")["cash"]
    before = wallet.balance
    do_decide_approval(req.pk, acting_user=make_staff("Payments"), approve=True, note="ok")
    exc.refresh_from_db()
    assert exc.status == "adjusted" and exc.adjustment.kind == LedgerTransaction.Kind.ADJUSTMENT
    wallet.refresh_from_db()
    assert wallet.balance == before + diff


def test_a_refused_adjustment_puts_the_exception_back_to_work(
    done_report, payments_user, make_staff, client_for
):
    exc = ReconciliationException.objects.filter(kind="amount_mismatch").first()
    client = client_for(payments_user)
    client.post(
        reverse("payments:reconciliation_exception_adjust", args=[exc.pk]),
        {
            "player": exc.payment.player_id,
            "balance": "cash",
            "direction": "debit",
            "amount": "1.00",
            "reason_code": "correction",
            "note": "try",
        },
    )
    exc.refresh_from_db()
    do_decide_approval(
        exc.approval_id, acting_user=make_staff("Payments"), approve=False, note="Wrong direction"
    )
    page = client.get(reverse("payments:reconciliation_exception_detail", args=[exc.pk]))
    assert page.context["workable"] and "propose another, or resolve it" in page.content.decode()
    client.post(
        reverse("payments:reconciliation_exception_resolve", args=[exc.pk]),
        {"note": "PSP corrects it in tomorrow's report"},
    )
    exc.refresh_from_db()
    assert exc.status == "resolved"
