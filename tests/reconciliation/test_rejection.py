"""Malformed settlement reports are rejected whole, with every bad line's number and reason,
and nothing of them is applied."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from payments.models import ReconciliationException, SettlementReport
from payments.reconciliation import runner
from payments.services.reconciliation import do_upload_settlement_report

from .conftest import bulk_payments, report_bytes

pytestmark = pytest.mark.django_db

CARD_HEADER = b"id,merchant_reference,type,amount,currency,status,created\n"
GOOD = b"ch_1,D-1,payment,1250,EUR,captured,2026-03-02T10:00:00Z\n"


def run(psp, data: bytes) -> SettlementReport:
    report, _ = do_upload_settlement_report(
        psp, stream=io.BytesIO(data), name="bad.csv", acting_user=None, enqueue=False
    )
    return runner.run_report(report.pk)


def errors(report) -> dict[int, str]:
    return {e["line"]: e["reason"] for e in report.errors}


def test_wrong_columns_are_named_on_line_one(card_psp):
    report = run(card_psp, b"id,reference,amount\nch_1,D-1,12\n")
    assert report.status == "rejected"
    assert report.error_count == 1
    reason = errors(report)[1]
    assert "expected id, merchant_reference, type, amount, currency, status, created" in reason
    assert "found id, reference, amount" in reason


def test_every_bad_value_is_listed_with_its_line(card_psp, player):
    bulk_payments(card_psp, player, 5)
    data = (
        CARD_HEADER
        + GOOD
        + b"ch_2,D-2,payment,12.50,EUR,captured,2026-03-02T10:00:00Z\n"  # line 3: decimals
        + b"ch_3,D-3,payment,1000,XXX,captured,2026-03-02T10:00:00Z\n"  # line 4: currency
        + b"ch_4,D-4,refund,1000,EUR,captured,2026-03-02T10:00:00Z\n"  # line 5: type
        + b"ch_5,D-5,payment,1000,EUR,settled,2026-03-02T10:00:00Z\n"  # line 6: status
        + b"ch_6,D-6,payment,1000,EUR,captured,02/03/2026\n"  # line 7: date
        + b",D-7,payment,1000,EUR,captured,2026-03-02T10:00:00Z\n"  # line 8: no reference
        + b"ch_8,D-8,payment,0,EUR,captured,2026-02-30T10:00:00Z\n"  # line 9: zero, 30 Feb
        + GOOD.replace(b"ch_1", b"ch_9")
    )
    report = run(card_psp, data)
    found = errors(report)
    assert report.status == "rejected" and report.error_count == 7, found
    assert sorted(found) == [3, 4, 5, 6, 7, 8, 9]
    assert 'amount "12.50" is not a whole number of minor units' in found[3]
    assert 'unknown currency "XXX"' in found[4]
    assert 'unknown type "refund"' in found[5]
    assert 'unknown status "settled" for a deposit' in found[6]
    assert "02/03/2026" in found[7] and "ISO 8601" in found[7]
    assert found[8] == "no PSP reference"
    assert 'amount "0" is zero' in found[9] and "2026-02-30" in found[9]
    assert not ReconciliationException.objects.exists()
    assert report.counts == {} and report.line_count == 0


def test_lines_with_the_wrong_number_of_fields_and_bad_quotes(card_psp):
    data = (
        CARD_HEADER
        + GOOD
        + b"ch_2,D-2,payment,1250,EUR,captured\n"  # line 3: six fields
        + b'ch_3,"D-3,x",payment,1250,EUR,captured,2026-03-02T10:00:00Z\n'  # fine: quoted comma
        + b'ch_4,"D-4,payment,1250,EUR,captured,2026-03-02T10:00:00Z\n'  # line 5: open quote
        + b"\n"  # line 6: blank in the middle
        + b"ch_7,D-7,payment,1250,EUR,captured,2026-03-02T10:00:00Z,extra\n"  # line 7
        + b"ch_8,D-8,payment,abc,EUR,captured,2026-03-02T10:00:00Z\n"  # line 8
    )
    report = run(card_psp, data)
    assert report.status == "rejected"
    found = errors(report)
    assert sorted(found) == [3, 5, 6, 7, 8]
    assert found[3] == "6 fields instead of 7"
    assert found[5] == "unbalanced quotes"
    assert found[6] == "empty line"
    assert found[7] == "8 fields instead of 7"
    assert 'amount "abc"' in found[8]


def test_a_line_with_one_field_too_many_is_rejected_even_when_every_value_reads(card_psp):
    """The extra field sends the file down the slow path; the values that remain all convert,
    so only the shape error can reject the line."""
    data = CARD_HEADER + GOOD + GOOD.replace(b"ch_1", b"ch_2").replace(b"Z\n", b"Z,extra\n")
    report = run(card_psp, data)
    assert report.status == "rejected"
    assert errors(report) == {3: "8 fields instead of 7"}
    assert not ReconciliationException.objects.exists()


def test_mixed_case_currencies_are_read_and_unknown_ones_named(card_psp, player):
    bulk_payments(card_psp, player, 2)
    ok = CARD_HEADER + (
        b"T-PSP-1,T-1,payment,17919,eur,captured,2026-03-02T00:00:01Z\n"
        b"T-PSP-2,T-2,payment,25838,Eur,captured,2026-03-02T00:00:02Z\n"
    )
    assert run(card_psp, ok).counts["matched"] == 2
    bad = run(card_psp, ok + b"T-PSP-3,T-3,payment,100,EURO,captured,2026-03-02T00:00:03Z\n")
    assert errors(bad) == {4: 'unknown currency "EURO"'}


def test_bytes_that_are_not_utf8_are_named_by_line_and_column(card_psp):
    data = CARD_HEADER + GOOD + b"ch_2,D-2,payment,1250,EUR,captured,2026-03-02T10:00:00Z\n"
    data += "ch_3,Dé-3,payment,1250,EUR,captured,2026-03-02T10:00:00Z\n".encode("latin-1")
    data += b"ch_4,D-4,payment,1250,EUR,captured,2026-03-02T10:00:\x00Z\n"
    report = run(card_psp, data)
    assert report.status == "rejected"
    found = errors(report)
    assert sorted(found) == [4, 5]
    assert "not valid UTF-8 (byte 0xe9 at column 7)" in found[4]
    assert "control character 0x00" in found[5]


def test_decimal_amounts_follow_the_currency(bank_psp, player):
    header = b"TxId,EndToEndId,Direction,Amount,Ccy,Status,BookingDateTime\n"
    data = (
        header
        + b"ob_1,D-1,CRDT,12.50,EUR,ACSC,2026-03-02T10:00:00+01:00\n"
        + b"ob_2,D-2,CRDT,12.505,EUR,ACSC,2026-03-02T10:00:00Z\n"  # line 3
        + b"ob_3,D-3,CRDT,1e3,EUR,ACSC,2026-03-02T10:00:00Z\n"  # line 4
        + b"ob_4,D-4,DBIT,-5.00,EUR,ACSC,2026-03-02T10:00:00Z\n"  # line 5
    )
    report = run(bank_psp, data)
    found = errors(report)
    assert sorted(found) == [3, 4, 5]
    assert "more decimals than EUR allows (2)" in found[3]
    assert '"1e3"' in found[4] and "not a decimal number" in found[4]
    assert '"-5.00"' in found[5]


def test_a_good_decimal_report_converts_with_the_exponent(bank_psp, player):
    bulk_payments(bank_psp, player, 4)
    data, _ = report_bytes(bank_psp)
    assert b"." in data.split(b"\n")[1]  # decimal amounts really
    report = run(bank_psp, data)
    assert report.status == "done" and report.counts["matched"] == 4


def test_an_empty_file_and_a_header_only_file(card_psp):
    with pytest.raises(Exception, match="empty"):
        run(card_psp, b"")
    report = run(card_psp, CARD_HEADER)
    assert report.status == "rejected" and errors(report) == {
        2: "the report has a header but no line"
    }


def test_the_command_lists_the_lines_and_exits_non_zero(card_psp, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(CARD_HEADER + GOOD + b"ch_2,D-2,payment,x,EUR,captured,2026-03-02T10:00Z\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="rejected: 1 line"):
        call_command("reconcile", card_psp.code, str(path), stdout=io.StringIO(), stderr=err)
    assert 'line 3: amount "x" is not a whole number of minor units' in err.getvalue()
