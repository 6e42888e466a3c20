"""Reconciliation runs: every discrepancy class found on a planted report, re-runs that change
nothing, a crash half-way that a re-run recovers from, and a 100,000-line report."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from backoffice.models import AuditEvent
from payments.models import Discrepancy, Payment, ReconciliationException, SettlementReport
from payments.reconciliation import matcher, runner
from payments.reconciliation.report_writer import ROW_FIELDS, Plant, write_settlement_report
from payments.services.reconciliation import (
    do_rerun_settlement_report,
    do_upload_settlement_report,
)

from .conftest import bulk_payments, report_bytes

D = Discrepancy
pytestmark = pytest.mark.django_db


def upload(psp, data: bytes, name="report.csv", **kwargs):
    report, _ = do_upload_settlement_report(
        psp, stream=io.BytesIO(data), name=name, acting_user=None, enqueue=False, **kwargs
    )
    return report


def run(psp, data: bytes, **kwargs) -> SettlementReport:
    return runner.run_report(upload(psp, data, **kwargs).pk)


def exceptions(psp) -> set[tuple[str, str]]:
    return set(ReconciliationException.objects.filter(psp=psp).values_list("kind", "match_key"))


PLANT = Plant(
    amount_mismatch=3,
    currency_mismatch=2,
    status_mismatch=2,
    missing_ours=4,
    missing_psp=3,
    duplicate=2,
)


@pytest.mark.parametrize("psp_fixture", ["card_psp", "bank_psp"])
def test_each_discrepancy_class_is_found_on_a_planted_report(request, psp_fixture, player):
    psp = request.getfixturevalue(psp_fixture)
    bulk_payments(psp, player, 200)
    data, written = report_bytes(psp, plant=PLANT, seed=7)
    report = run(psp, data)
    assert report.status == SettlementReport.Status.DONE, report.errors or report.failure
    planted_lines = 200 - 3 + 4 + 2  # missing_psp left out, ghosts and duplicates added
    assert report.line_count == planted_lines == written.lines
    assert report.counts == {
        # A duplicated line's first occurrence is compared (and matches) like any other.
        "matched": 200 - 3 - 2 - 2 - 3,
        "amount_mismatch": 3,
        "currency_mismatch": 2,
        "status_mismatch": 2,
        "missing_ours": 4,
        "missing_psp": 3,
        "duplicate": 2,
    }
    expected = {(kind, ref) for kind, refs in written.planted.items() for ref in refs}
    assert exceptions(psp) == expected
    # Both sides are kept: the PSP's line and our payment as they were.
    amount = ReconciliationException.objects.filter(kind=D.AMOUNT_MISMATCH).first()
    ours = Payment.objects.get(pk=amount.payment_id)
    assert amount.our_amount == ours.amount != amount.psp_amount
    assert amount.line_no > 1 and amount.psp_status in ("captured", "paid")
    missing = ReconciliationException.objects.filter(kind=D.MISSING_PSP).first()
    assert missing.payment_id and missing.line_no is None and missing.psp_amount is None
    dup = ReconciliationException.objects.get(
        kind=D.DUPLICATE, match_key=written.planted["duplicate"][0]
    )
    assert dup.line_count == 2
    assert set(ReconciliationException.objects.values_list("status", flat=True)) == {"open"}
    # Every new exception has its creation in its history.
    assert ReconciliationException.history.filter(history_type="+").count() == len(expected)


def test_a_payout_we_never_heard_back_about_matches_by_our_reference(card_psp, player):
    bulk_payments(card_psp, player, 8)
    lost = Payment.objects.filter(psp=card_psp, kind="withdrawal").first()
    Payment.objects.filter(pk=lost.pk).update(status="sent_to_psp", psp_reference=None)
    data, _ = report_bytes(card_psp)
    report = run(card_psp, data)
    assert report.counts["status_mismatch"] == 1 and report.counts["missing_ours"] == 0
    exc = ReconciliationException.objects.get()
    assert (exc.kind, exc.payment_id, exc.psp_status, exc.our_status) == (
        "status_mismatch",
        lost.pk,
        "paid",
        "sent_to_psp",
    )
    assert exc.match_key == f"po_{lost.reference}"


def test_running_the_same_report_again_changes_nothing(card_psp, player):
    bulk_payments(card_psp, player, 120)
    data, _ = report_bytes(card_psp, plant=PLANT, seed=3)
    first = run(card_psp, data)
    snapshot = list(ReconciliationException.objects.order_by("id").values())
    history = ReconciliationException.history.count()

    # Uploading the same file finds the same report; re-running it finds the same breaks.
    again, created = do_upload_settlement_report(
        card_psp, stream=io.BytesIO(data), name="again.csv", acting_user=None, enqueue=False
    )
    assert (again.pk, created) == (first.pk, False)
    do_rerun_settlement_report(first.pk, acting_user=None)
    second = runner.run_report(first.pk)
    assert second.counts == first.counts and second.runs == 2
    assert list(ReconciliationException.objects.order_by("id").values()) == snapshot
    assert ReconciliationException.history.count() == history

    # Another file with the same breaks and one more line adds no duplicate exception.
    bulk_payments(card_psp, player, 1, prefix="LATE")
    late = Payment.objects.filter(reference="LATE-1").values(*ROW_FIELDS)
    extra = io.StringIO(newline="")
    write_settlement_report(extra, card_psp, list(late))
    third = run(card_psp, data + extra.getvalue().split("\n", 1)[1].encode())
    assert third.pk != first.pk and third.counts["matched"] == first.counts["matched"] + 1
    assert ReconciliationException.objects.count() == len(snapshot)
    assert set(ReconciliationException.objects.values_list("last_report_id", flat=True)) == {
        third.pk
    }


def test_a_run_killed_half_way_applies_nothing_and_a_rerun_ends_the_same(
    card_psp, player, monkeypatch
):
    bulk_payments(card_psp, player, 150)
    data, _ = report_bytes(card_psp, plant=PLANT, seed=11)
    report = upload(card_psp, data)

    real = matcher.record_exceptions

    def crash(cursor, **kwargs):
        real(cursor, **kwargs)  # the exceptions are written, then the worker dies
        raise SystemError("worker lost")

    monkeypatch.setattr(matcher, "record_exceptions", crash)
    crashed = runner.run_report(report.pk)
    assert crashed.status == SettlementReport.Status.FAILED
    assert "worker lost" in crashed.failure
    assert not ReconciliationException.objects.exists()
    monkeypatch.setattr(matcher, "record_exceptions", real)

    do_rerun_settlement_report(report.pk, acting_user=None)
    done = runner.run_report(report.pk)
    assert done.status == SettlementReport.Status.DONE and done.runs == 2

    # The same file on a clean database ends the same.
    kinds = sorted(ReconciliationException.objects.values_list("kind", "match_key"))
    ReconciliationException.history.all().delete()
    ReconciliationException.objects.all().delete()
    fresh = upload(card_psp, data + b"\n", name="fresh.csv")  # another file, same lines
    assert runner.run_report(fresh.pk).counts == done.counts
    assert sorted(ReconciliationException.objects.values_list("kind", "match_key")) == kinds


def test_a_stale_running_report_is_run_again_when_redelivered(card_psp, player):
    """The worker died after claiming: the report says running, nothing was applied; the
    task delivered again runs it to the end."""
    bulk_payments(card_psp, player, 20)
    data, _ = report_bytes(card_psp)
    report = upload(card_psp, data)
    SettlementReport.objects.filter(pk=report.pk).update(status="running", runs=1)
    done = runner.run_report(report.pk)
    assert (done.status, done.runs, done.counts["matched"]) == ("done", 2, 20)
    # Delivered a third time once done: nothing happens.
    assert runner.run_report(report.pk).runs == 2


def test_a_later_run_clears_exceptions_that_now_match(card_psp, player):
    bulk_payments(card_psp, player, 12)
    lost = Payment.objects.filter(psp=card_psp, kind="withdrawal").first()
    Payment.objects.filter(pk=lost.pk).update(status="sent_to_psp")
    data, _ = report_bytes(card_psp)
    report = run(card_psp, data)
    exc = ReconciliationException.objects.get()
    assert exc.kind == D.STATUS_MISMATCH
    Payment.objects.filter(pk=lost.pk).update(status="paid")  # the PSP's callback arrived
    do_rerun_settlement_report(report.pk, acting_user=None)
    runner.run_report(report.pk)
    exc.refresh_from_db()
    assert exc.status == "cleared" and f"#{report.pk}" in exc.resolution_note
    assert exc.history.first().history_change_reason == f"matched in report #{report.pk}"


def test_the_command_waits_and_prints_the_counts(card_psp, player, tmp_path):
    bulk_payments(card_psp, player, 60)
    data, _ = report_bytes(card_psp, plant=PLANT, seed=5)
    path = tmp_path / "settlement.csv"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile", card_psp.code, str(path), "--json", stdout=out, stderr=err)
    import json

    counts = json.loads(out.getvalue())
    assert counts == {
        "matched": 60 - 3 - 2 - 2 - 3,
        "amount_mismatch": 3,
        "currency_mismatch": 2,
        "status_mismatch": 2,
        "missing_ours": 4,
        "missing_psp": 3,
        "duplicate": 2,
    }
    out = io.StringIO()
    call_command("reconcile", card_psp.code, str(path), stdout=out, stderr=io.StringIO())
    assert "Amount mismatch" in out.getvalue() and "Missing in the report" in out.getvalue()
    assert ReconciliationException.objects.count() == 16
    assert AuditEvent.objects.filter(action="payments.reconciliation.rerun").count() == 1


@pytest.mark.slow
def test_a_100k_line_report_completes(card_psp, player, django_assert_max_num_queries):
    bulk_payments(card_psp, player, 100_000)
    data, written = report_bytes(
        card_psp,
        plant=Plant(amount_mismatch=50, missing_ours=10, missing_psp=25, duplicate=5),
        seed=2,
    )
    report = upload(card_psp, data)
    # Set-based: the query count does not grow with the lines.
    with django_assert_max_num_queries(40):
        done = runner.run_report(report.pk)
    assert done.status == "done", done.errors or done.failure
    assert done.line_count == written.lines == 100_000 - 25 + 10 + 5
    assert done.counts["matched"] == 100_000 - 50 - 25
    assert done.counts["amount_mismatch"] == 50 and done.counts["missing_psp"] == 25
    assert ReconciliationException.objects.count() == 50 + 10 + 25 + 5
