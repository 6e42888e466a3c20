"""The audit trail pages: who sees which events, the filters, one event side by side, and the
CSV export that is itself audited."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.urls import reverse

from backoffice.audit import record_event
from backoffice.csv_export import copy_statement, stream_copy
from backoffice.models import AuditEvent, SavedFilter

pytestmark = pytest.mark.django_db

LIST = reverse("backoffice:audit_list")


def detail(event) -> str:
    return reverse("backoffice:audit_detail", kwargs={"pk": event.pk})


def event_ids(response) -> set[int]:
    """Ids of the events shown in a list page's table."""
    return {row.record.pk for row in response.context["table"].paginated_rows}


@pytest.fixture
def events(brand_a, brand_b, make_staff):
    """One event in each brand, one staff event with no brand, by a known actor."""
    actor = make_staff("Admin", username="alice")
    return {
        "a": record_event(
            "players.player.suspended", actor=actor, brand=brand_a, summary="in A",
            before={"status": "active", "kept": 1}, after={"status": "suspended", "kept": 1},
        ),
        "b": record_event("players.player.suspended", actor=actor, brand=brand_b, summary="in B"),
        "staff": record_event("staff.deactivated", actor=actor, summary="no brand"),
    }  # fmt: skip


# --- who sees what ----------------------------------------------------------------------------


def test_compliance_sees_own_brand_and_staff_events_only(make_staff, client_for, events):
    user = make_staff("Compliance")  # brand A only
    response = client_for(user).get(LIST)
    assert response.status_code == 200
    shown = event_ids(response)
    assert events["a"].pk in shown and events["staff"].pk in shown
    assert events["b"].pk not in shown


def test_auditor_sees_every_brand(make_staff, client_for, events):
    response = client_for(make_staff("Auditor", brands=[])).get(LIST)
    assert {e.pk for e in events.values()} <= event_ids(response)


@pytest.mark.parametrize("role", ["Support", "Payments", "Risk", "Bonus manager"])
def test_roles_without_the_permission_get_403(role, make_staff, client_for, events):
    assert client_for(make_staff(role)).get(LIST).status_code == 403


def test_event_of_another_brand_is_404(make_staff, client_for, events):
    client = client_for(make_staff("Compliance"))
    assert client.get(detail(events["b"])).status_code == 404
    assert client.get(detail(events["a"])).status_code == 200
    assert client.get(detail(events["staff"])).status_code == 200


# --- filters ----------------------------------------------------------------------------------


@pytest.fixture
def auditor_client(make_staff, client_for):
    return client_for(make_staff("Auditor", brands=[]))


def test_filter_by_actor_username_or_label(auditor_client, events):
    system = record_event("reporting.rollup", actor_label="system")
    by_alice = event_ids(auditor_client.get(LIST, {"actor": "alice"}))
    assert by_alice == {e.pk for e in events.values()}
    assert system.pk in event_ids(auditor_client.get(LIST, {"actor": "system"}))
    assert system.pk not in by_alice
    assert event_ids(auditor_client.get(LIST, {"actor": "nobody"})) == set()


def test_actor_filter_follows_the_user_through_a_rename(auditor_client, events):
    alice = events["a"].actor
    alice.username = "alice.smith"
    alice.save()
    assert event_ids(auditor_client.get(LIST, {"actor": "alice.smith"})) == {
        e.pk for e in events.values()
    }


def test_filter_by_object_type_and_id(auditor_client, brand_a, events):
    on_brand = record_event("brand.renamed", subject=brand_a, summary="renamed")
    shown = event_ids(
        auditor_client.get(LIST, {"object_type": "backoffice.brand", "object_id": brand_a.pk})
    )
    assert shown == {on_brand.pk}


def test_filter_by_action_prefix(auditor_client, events):
    shown = event_ids(auditor_client.get(LIST, {"action": "players."}))
    assert shown == {events["a"].pk, events["b"].pk}
    assert event_ids(auditor_client.get(LIST, {"action": "staff.deactivated"})) == {
        events["staff"].pk
    }


def test_filter_by_brand_and_by_no_brand(auditor_client, brand_b, events):
    assert event_ids(auditor_client.get(LIST, {"brand": brand_b.pk})) == {events["b"].pk}
    no_brand = event_ids(auditor_client.get(LIST, {"brand": "null", "actor": "alice"}))
    assert no_brand == {events["staff"].pk}


def test_brand_filter_offers_only_the_users_brands(make_staff, client_for, brand_b, events):
    client = client_for(make_staff("Compliance"))
    response = client.get(LIST, {"brand": brand_b.pk})
    assert "brand" in response.context["filterset"].errors
    assert event_ids(response) == set()


def test_filter_by_date_range_includes_the_last_day(auditor_client, events):
    today = datetime.now(UTC).date()
    assert events["a"].pk in event_ids(
        auditor_client.get(LIST, {"since": today.isoformat(), "until": today.isoformat()})
    )
    yesterday = (today - timedelta(days=1)).isoformat()
    assert event_ids(auditor_client.get(LIST, {"until": yesterday})) == set()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert event_ids(auditor_client.get(LIST, {"since": tomorrow})) == set()


def test_reversed_date_range_is_an_error_beside_the_field(auditor_client, events):
    response = auditor_client.get(LIST, {"since": "2024-02-01", "until": "2024-01-01"})
    assert response.status_code == 200
    assert "until" in response.context["filterset"].errors
    assert "before the “From” day" in response.content.decode()
    assert event_ids(response) == set()


def test_bad_date_is_an_error_not_a_crash(auditor_client, events):
    response = auditor_client.get(LIST, {"since": "yesterday-ish"})
    assert response.status_code == 200
    assert "since" in response.context["filterset"].errors


# --- one event --------------------------------------------------------------------------------


def test_detail_shows_before_and_after_with_changed_keys(auditor_client, events):
    response = auditor_client.get(detail(events["a"]))
    diff = {row["key"]: row for row in response.context["diff"]}
    assert diff["status"]["changed"] and not diff["kept"]["changed"]
    assert (diff["status"]["before"], diff["status"]["after"]) == ("active", "suspended")
    html = response.content.decode()
    assert html.count('class="diff-removed"') == 1 and html.count('class="diff-added"') == 1
    assert response.context["hash_ok"] and response.context["link_ok"]


def test_detail_marks_keys_present_on_one_side_only(auditor_client):
    event = record_event("x.changed", before={"gone": 1}, after={"new": [1, 2]})
    diff = {row["key"]: row for row in auditor_client.get(detail(event)).context["diff"]}
    assert diff["gone"]["has_before"] and not diff["gone"]["has_after"] and diff["gone"]["changed"]
    assert diff["new"]["block"] and diff["new"]["changed"]


def test_detail_shows_the_objects_history_when_visible(
    auditor_client, make_staff, client_for, brand_a, brand_b
):
    event = record_event("brand.renamed", subject=brand_b, summary="renamed")
    response = auditor_client.get(detail(event))
    assert [h.history_type for h in response.context["history"]] == ["+"]
    # Events about a brand carry no brand, so brand A's compliance officer reads this one,
    # but not the change rows of brand B itself.
    compliance = client_for(make_staff("Compliance"))
    assert compliance.get(detail(event)).context["history"] is None
    own = record_event("brand.renamed", subject=brand_a, summary="renamed")
    assert len(compliance.get(detail(own)).context["history"]) == 1


def test_detail_query_count_is_bounded(auditor_client, events, django_assert_max_num_queries):
    with django_assert_max_num_queries(16):
        assert auditor_client.get(detail(events["a"])).status_code == 200


# --- export -----------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_export_is_exactly_the_filtered_rows_and_is_audited(make_staff, client_for, events):
    user = make_staff("Compliance")
    response = client_for(user).get(LIST, {"action": "players.", "export": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-trail-')
    rows = read_csv(response)
    header, body = rows[0], rows[1:]
    assert header[:5] == ["id", "occurred_at_utc", "actor_id", "actor", "action"]
    assert [int(r[0]) for r in body] == [events["a"].pk]  # brand B is out of scope
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor == user
    assert exported.after == {"filters": {"action": ["players."]}}


def test_export_does_not_contain_itself(auditor_client, events):
    rows = read_csv(auditor_client.get(LIST, {"export": "csv"}))
    exported = AuditEvent.objects.get(action="audit.exported")
    ids = {int(r[0]) for r in rows[1:]}
    assert exported.pk not in ids
    assert ids == set(AuditEvent.objects.filter(id__lt=exported.pk).values_list("id", flat=True))


def test_export_writes_json_and_times_readably(auditor_client, events):
    rows = read_csv(
        auditor_client.get(
            LIST, {"action": "players.player", "brand": events["a"].brand_id, "export": "csv"}
        )
    )
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["after"] == '{"kept": 1, "status": "suspended"}'
    assert record["brand"] == "alpha"
    occurred = datetime.fromisoformat(record["occurred_at_utc"])
    assert occurred.replace(tzinfo=UTC) == events["a"].occurred_at
    assert record["row_hash"] == events["a"].row_hash


def _copy_in_progress() -> bool:
    """Whether the connection is in the middle of a statement (the export's COPY)."""
    from psycopg import pq

    return connection.connection.pgconn.transaction_status == pq.TransactionStatus.ACTIVE


def _add_events(n: int, *, brand=None, action: str = "bulk.row") -> None:
    """`n` audit rows in one statement (not a real chain: these tests do not verify it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO backoffice_auditevent (occurred_at, actor_label, action, object_type,
                object_id, object_repr, brand_id, summary, reason, before, after, prev_hash,
                row_hash)
            SELECT now(), 'system', %s, 'players.player', i::text, 'player ' || i, %s,
                   'Bulk row ' || i || ', with a comma and a "quote"', '', NULL,
                   jsonb_build_object('i', i), md5(i::text), md5(%s || i::text)
            FROM generate_series(1, %s) AS g(i)
            """,
            [action, getattr(brand, "pk", brand), action, n],
        )


def test_export_sends_the_header_before_running_the_query(auditor_client, events):
    response = auditor_client.get(LIST, {"export": "csv"})
    chunks = iter(response.streaming_content)
    header = next(chunks)
    assert header == (
        b"id,occurred_at_utc,actor_id,actor,action,object_type,object_id,object,brand,summary,"
        b"reason,before,after,ip_address,prev_hash,row_hash\n"
    )
    assert not _copy_in_progress()
    assert len(read_csv_chunks(chunks)) == AuditEvent.objects.count() - 1  # not the export


def read_csv_chunks(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode())))


def test_large_export_is_streamed_in_bounded_chunks(monkeypatch, auditor_client, brand_a):
    monkeypatch.setattr("backoffice.csv_export.COPY_CHUNK_BYTES", 8192)
    _add_events(2000, brand=brand_a)
    response = auditor_client.get(LIST, {"action": "bulk.", "export": "csv"})
    chunks = iter(response.streaming_content)
    next(chunks)  # the header
    first = next(chunks)
    assert _copy_in_progress()  # the first rows are out while the database is still sending
    rest = list(chunks)
    assert not _copy_in_progress()
    sizes = [len(c) for c in [first, *rest]]
    assert len(sizes) > 20
    # Each chunk is one threshold's worth plus at most the row that crossed it.
    assert all(8192 <= size < 8192 + 300 for size in sizes[:-1])
    rows = read_csv_chunks([first, *rest])
    assert len(rows) == 2000
    assert {len(row) for row in rows} == {16}
    assert rows[0][9] == 'Bulk row 1, with a comma and a "quote"'


@pytest.mark.django_db(transaction=True)
def test_copy_abandoned_midway_leaves_the_connection_usable():
    # What happens when the client goes away: the WSGI server closes the response's generator.
    chunks = stream_copy(
        "COPY (SELECT i, repeat('x', 100) FROM generate_series(1, 100000) AS g(i)) TO STDOUT",
        (),
        chunk_bytes=4096,
    )
    assert len(next(chunks)) >= 4096
    assert _copy_in_progress()
    chunks.close()
    assert not _copy_in_progress()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_copy_of_a_distinct_queryset_keeps_to_the_columns_asked_for(events):
    from backoffice.audit_views import EXPORT_COLUMNS

    qs = AuditEvent.objects.filter(action__startswith="players.").distinct().order_by("id")
    statement, params = copy_statement(qs, EXPORT_COLUMNS)
    rows = read_csv_chunks(stream_copy(statement, params))
    assert [int(r[0]) for r in rows] == [events["a"].pk, events["b"].pk]
    assert {len(r) for r in rows} == {len(EXPORT_COLUMNS)}


def test_export_keeps_json_text_and_times_intact(auditor_client):
    before = {"status": "active", "a": [1, -2.5, None], "ключ": "значение", "nested": {"bb": 1}}
    event = record_event("x.json", before=before, after=None, summary='line one\nline "two", three')
    rows = read_csv(auditor_client.get(LIST, {"action": "x.json", "export": "csv"}))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert json.loads(record["before"]) == event.before
    assert record["after"] == ""
    assert record["summary"] == 'line one\nline "two", three'
    when = record["occurred_at_utc"]  # as PostgreSQL writes a timestamp: no "T", no offset
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?", when)
    assert datetime.fromisoformat(when).replace(tzinfo=UTC) == event.occurred_at
    assert record["brand"] == "" and record["actor_id"] == ""


def test_export_times_are_utc_whatever_the_sessions_zone(auditor_client):
    event = record_event("x.tz")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'Asia/Tokyo'")  # until the test's transaction ends
    rows = read_csv(auditor_client.get(LIST, {"action": "x.tz", "export": "csv"}))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert datetime.fromisoformat(record["occurred_at_utc"]).replace(tzinfo=UTC) == (
        event.occurred_at
    )


def test_export_filters_are_bound_as_values_not_sql(auditor_client, events):
    response = auditor_client.get(
        LIST, {"action": "x'); DROP TABLE backoffice_brand; --", "export": "csv"}
    )
    assert read_csv(response)[1:] == []
    assert AuditEvent.objects.filter(action="staff.deactivated").exists()


def test_scoped_export_is_exactly_the_rows_of_the_list(make_staff, client_for, brand_b, events):
    user = make_staff("Compliance")  # brand A only
    client = client_for(user)
    listed = event_ids(client.get(LIST, {"per_page": 200}))
    rows = read_csv(client.get(LIST, {"export": "csv"}))
    assert {int(r[0]) for r in rows[1:]} == listed
    assert events["b"].pk not in listed and events["staff"].pk in listed


def test_export_neutralises_formula_cells(auditor_client):
    record_event("x.y", summary='=HYPERLINK("http://evil")', reason="+1", actor_label="@me")
    rows = read_csv(auditor_client.get(LIST, {"action": "x.y", "export": "csv"}))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["summary"].startswith("'=")
    assert record["reason"] == "'+1"
    assert record["actor"] == "'@me"


def test_export_neutralises_formula_cells_in_json_and_tabs(auditor_client):
    record_event("x.z", summary="\tcmd", reason="-2+3", after=-5)  # a bare JSON number
    rows = read_csv(auditor_client.get(LIST, {"action": "x.z", "export": "csv"}))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["summary"] == "'\tcmd"
    assert record["reason"] == "'-2+3"
    assert record["after"] == "'-5"


def test_export_needs_the_export_permission(make_staff, client_for, events):
    response = client_for(make_staff("Admin")).get(LIST, {"export": "csv"})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_export_with_invalid_filters_exports_nothing(auditor_client, events):
    response = auditor_client.get(LIST, {"since": "nope", "export": "csv"})
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_export_link_shown_only_with_the_permission(make_staff, client_for, events):
    assert b"export=csv" in client_for(make_staff("Compliance")).get(LIST).content
    assert b"export=csv" not in client_for(make_staff("Admin")).get(LIST).content


def test_saved_filters_are_offered_on_the_trail(make_staff, client_for):
    user = make_staff("Compliance")
    SavedFilter.objects.create(
        user=user, list_name="backoffice:audit_list", name="Mine", query="action=x"
    )
    response = client_for(user).get(LIST)
    assert [f.name for f in response.context["saved_filters"]] == ["Mine"]
