"""The audit chain: hashes survive the database, the trigger forbids edits, and `verify_audit`
finds a row altered or removed behind the application's back."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from simple_history.models import HistoricalRecords

from backoffice.audit import (
    GENESIS_HASH,
    ChainStats,
    compute_hash,
    hashed_fields,
    record_event,
    verify_chain,
)
from backoffice.models import AuditEvent

pytestmark = pytest.mark.django_db


def _behind_the_trigger(sql: str, params: list) -> None:
    """Run `sql` with the append-only trigger switched off, as an intruder with DDL rights would.

    The test's transaction rolls the ALTERs back with everything else. Django's foreign keys
    are checked at commit, and PostgreSQL will not ALTER a table with checks still queued, so
    they run first.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("ALTER TABLE backoffice_auditevent DISABLE TRIGGER auditevent_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE backoffice_auditevent ENABLE TRIGGER auditevent_append_only")


def _chain(n: int) -> list[AuditEvent]:
    return [record_event("tests.step", summary=f"step {i}", after={"i": i}) for i in range(n)]


def _run_verify(*args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `manage.py verify_audit`: manage.py exits with a
    CommandError's `returncode` (`run_from_argv` itself would close the test's connection)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# Values whose text form PostgreSQL rewrites (numbers in jsonb, IPv6 in inet), or which need
# care on the way in (datetimes and Decimals in JSON, an id given as a string, mixed keys).
ROUND_TRIP_CASES = {
    "ipv6 written long": {"ip_address": "2001:0db8:0000:0000:0000:0000:0000:0001"},
    "ipv6 with two zero runs": {"ip_address": "2001:db8:0:0:1:0:0:1"},
    "ipv4-mapped ipv6": {"ip_address": "::ffff:10.0.0.1"},
    "ipv4": {"ip_address": "192.0.2.7"},
    "large float": {"after": {"f": 1e16, "g": 1.5e300}},
    "small and whole floats": {"before": {"f": 1e-7, "g": 2.0, "h": -0.0}},
    "decimal and datetime": {
        "after": {
            "amount": Decimal("10.10"),
            "at": datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        }
    },
    "unicode and nesting": {"after": {"name": "Zoë \u2028 ✓", "n": [1, [2, {"b": 1, "a": 2}]]}},
    "mixed key types": {"after": {1: "one", "2": "two"}},
    "top-level list": {"after": [3, 2, 1]},
    "empty dict": {"before": {}},
    "long text": {"reason": "x" * 5000, "summary": "s" * 400},
}


@pytest.mark.parametrize("fields", ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_hash_survives_the_database_round_trip(fields):
    event = record_event("tests.round_trip", **fields)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert hashed_fields(stored) == hashed_fields(event)
    assert compute_hash(stored.prev_hash, hashed_fields(stored)) == stored.row_hash
    assert list(verify_chain()) == []


def test_brand_given_as_a_string_id_still_verifies(brand_a):
    record_event("tests.brand", brand=str(brand_a.pk))
    assert list(verify_chain()) == []


def test_malformed_ip_is_refused_and_nothing_written():
    with pytest.raises(ValueError, match="Not an IP address"):
        record_event("tests.bad_ip", ip_address="10.0.0.1/24")
    assert not AuditEvent.objects.filter(action="tests.bad_ip").exists()


@pytest.mark.parametrize(
    ("remote_addr", "recorded"),
    [("10.0.0.9", "10.0.0.9"), ("2001:db8:0:0::7", "2001:db8::7"), ("unknown", None)],
)
def test_request_address_is_recorded_and_an_odd_one_does_not_fail_the_action(remote_addr, recorded):
    HistoricalRecords.context.request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)
    try:
        event = record_event("tests.from_request")
    finally:
        del HistoricalRecords.context.request
    assert AuditEvent.objects.get(pk=event.pk).ip_address == recorded
    assert list(verify_chain()) == []


def _empty_the_trail() -> None:
    _behind_the_trigger("DELETE FROM backoffice_auditevent", [])


def test_rows_link_in_order_from_genesis():
    _empty_the_trail()
    first, second, third = _chain(3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.row_hash
    assert third.prev_hash == second.row_hash


def test_verify_walks_in_batches_and_counts_rows():
    _chain(7)
    stats = ChainStats()
    assert list(verify_chain(batch_size=3, stats=stats)) == []
    assert stats.rows == AuditEvent.objects.count()
    assert stats.last_id == AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]


def test_command_says_ok_with_the_row_count():
    _chain(4)
    code, out, err = _run_verify()
    assert code == 0
    assert out.strip() == f"OK: {AuditEvent.objects.count()} rows"
    assert err == ""


def test_command_on_an_empty_trail_is_ok():
    _empty_the_trail()
    code, out, _ = _run_verify()
    assert (code, out.strip()) == (0, "OK: 0 rows")


def test_tampered_row_is_named_and_exit_is_non_zero():
    events = _chain(5)
    victim = events[2]
    _behind_the_trigger(
        "UPDATE backoffice_auditevent SET summary = %s WHERE id = %s", ["nothing to see", victim.pk]
    )
    code, out, err = _run_verify()
    assert code == 1
    assert f"#{victim.pk} content does not match its hash" in err
    assert "OK" not in out


def test_tampered_json_is_caught():
    events = _chain(3)
    _behind_the_trigger(
        "UPDATE backoffice_auditevent SET after = %s::jsonb WHERE id = %s",
        ['{"i": 99}', events[1].pk],
    )
    assert [row_id for row_id, _ in verify_chain()] == [events[1].pk]


def test_rehashed_row_breaks_the_next_link():
    """An intruder who also recomputes the row's hash is caught at the following row."""
    events = _chain(4)
    victim = AuditEvent.objects.get(pk=events[1].pk)
    victim.summary = "rewritten"
    new_hash = compute_hash(victim.prev_hash, hashed_fields(victim))
    _behind_the_trigger(
        "UPDATE backoffice_auditevent SET summary = %s, row_hash = %s WHERE id = %s",
        ["rewritten", new_hash, victim.pk],
    )
    problems = list(verify_chain())
    assert problems[0][0] == events[2].pk
    assert "does not link" in problems[0][1]


def test_deleted_first_row_is_caught():
    _empty_the_trail()
    events = _chain(3)
    _behind_the_trigger("DELETE FROM backoffice_auditevent WHERE id = %s", [events[0].pk])
    assert [row_id for row_id, _ in verify_chain()] == [events[1].pk]


def test_deleted_middle_row_is_caught():
    events = _chain(5)
    _behind_the_trigger("DELETE FROM backoffice_auditevent WHERE id = %s", [events[2].pk])
    code, _, err = _run_verify()
    assert code == 1
    assert f"#{events[3].pk} does not link to the row before it" in err


def test_all_option_reports_every_broken_row():
    events = _chain(6)
    for victim in (events[1], events[4]):
        _behind_the_trigger(
            "UPDATE backoffice_auditevent SET reason = 'x' WHERE id = %s", [victim.pk]
        )
    code, _, err = _run_verify("--all")
    assert code == 1
    assert f"#{events[1].pk} " in err and f"#{events[4].pk} " in err
    code, _, err = _run_verify()
    assert f"#{events[1].pk} " in err and f"#{events[4].pk} " not in err


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE backoffice_auditevent SET summary = 'edited' WHERE id = %s",
        "DELETE FROM backoffice_auditevent WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_trigger_rejects_plain_update_and_delete(statement):
    event = record_event("tests.locked", summary="original")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).summary == "original"


def test_orm_update_and_delete_are_rejected_too():
    event = record_event("tests.locked", summary="original")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(summary="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk, summary="original").exists()
