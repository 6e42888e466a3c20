"""The unified timeline: order across kinds, keyset pages without gaps or repeats (even when
timestamps are equal), visibility in SQL, filters, and the load-more endpoint."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from players import timeline
from players.models import TimelineEvent
from players.selectors import TimelineCursor, timeline_page

pytestmark = pytest.mark.django_db

KINDS = ["payment", "ledger", "game", "bonus", "kyc", "ticket", "note", "account"]


def _seed(player, n=230, seed=7):
    """n events of every kind, in random insertion order, many sharing a timestamp, some
    visible only with a permission."""
    rng = random.Random(seed)
    base = timezone.now().replace(microsecond=0) - timedelta(days=5)
    stamps = [base + timedelta(minutes=rng.randint(0, 40)) for _ in range(n)]
    events = []
    for i, stamp in enumerate(stamps):
        kind = rng.choice(KINDS)
        visibility = ""
        if kind == "note" and i % 2:
            visibility = "players.view_risk_notes"
        elif kind == "kyc" and i % 3 == 0:
            visibility = "compliance.view_document_contents"
        events.append({
            "player": player, "kind": kind, "action": f"{kind}.test", "summary": f"e{i}",
            "occurred_at": stamp, "visibility": visibility,
        })  # fmt: skip
    timeline.record_many(events)
    return TimelineEvent.objects.filter(player=player)


def _walk(player, user, page_size, **filters):
    seen, cursor, pages = [], None, 0
    while True:
        page = timeline_page(player, user, cursor=cursor, limit=page_size, **filters)
        seen.extend(page.events)
        pages += 1
        if page.next_cursor is None:
            return seen, pages
        cursor = TimelineCursor.decode(page.next_cursor.encode())  # through the URL form


def _expected(qs):
    return sorted(qs, key=lambda e: (e.occurred_at, e.id), reverse=True)


@pytest.mark.parametrize("page_size", [1, 7, 50])
def test_pages_join_without_gaps_or_repeats(player, risk_analyst, page_size):
    everything = _seed(player)
    seen, pages = _walk(player, risk_analyst, page_size)
    visible = everything.exclude(visibility="compliance.view_document_contents")
    assert [e.pk for e in seen] == [e.pk for e in _expected(visible)]
    assert len({e.pk for e in seen}) == len(seen)
    assert pages == -(-len(seen) // page_size)  # no empty trailing page
    # Equal timestamps were there to be split across page boundaries.
    stamps = [e.occurred_at for e in seen]
    assert len(set(stamps)) < len(stamps)


def test_hidden_entries_are_filtered_in_sql_for_support(player, support_agent, risk_analyst):
    everything = _seed(player, n=120)
    seen, _ = _walk(player, support_agent, 10)
    assert seen, "support sees the public entries"
    assert all(e.visibility in ("", "players.view_playernote") for e in seen)
    assert [e.pk for e in seen] == [e.pk for e in _expected(everything.filter(visibility=""))]
    # Pages are full even though hidden rows sit between visible ones.
    first = timeline_page(player, support_agent, limit=10)
    assert len(first.events) == 10
    risk_seen, _ = _walk(player, risk_analyst, 10)
    assert any(e.visibility == "players.view_risk_notes" for e in risk_seen)


def test_kind_and_date_filters(player, risk_analyst):
    everything = _seed(player, n=150)
    seen, _ = _walk(player, risk_analyst, 9, kinds=["payment", "game"])
    expected = everything.filter(kind__in=["payment", "game"]).exclude(
        visibility="compliance.view_document_contents"
    )
    assert [e.pk for e in seen] == [e.pk for e in _expected(expected)]

    middle = _expected(everything)[75].occurred_at
    seen, _ = _walk(player, risk_analyst, 9, since=middle)
    assert seen and all(e.occurred_at >= middle for e in seen)
    seen, _ = _walk(player, risk_analyst, 9, until=middle)
    assert seen and all(e.occurred_at < middle for e in seen)


def test_other_players_events_never_leak(player, brand_a, risk_analyst):
    from tests.factories import PlayerFactory

    other = PlayerFactory(brand=brand_a)
    _seed(other, n=20)
    assert timeline_page(player, risk_analyst).events == []


def test_cursor_round_trip_keeps_microseconds():
    stamp = timezone.now().replace(microsecond=123456)
    cursor = TimelineCursor(stamp, 42)
    assert TimelineCursor.decode(cursor.encode()) == cursor
    for bad in ["", "abc", "1.2.3", "12;drop", "1e5.4"]:
        with pytest.raises(ValueError):
            TimelineCursor.decode(bad)


def test_one_query_per_page(player, risk_analyst, django_assert_num_queries):
    _seed(player, n=60)
    risk_analyst.get_all_permissions()  # cached once per request in real use
    with django_assert_num_queries(1):
        page = timeline_page(player, risk_analyst, limit=20)
    with django_assert_num_queries(1):
        timeline_page(player, risk_analyst, limit=20, cursor=page.next_cursor)
    with django_assert_num_queries(1):  # several kinds: one statement, merged in SQL
        timeline_page(player, risk_analyst, limit=20, kinds=["payment", "note", "game"])


# -- the endpoint ---------------------------------------------------------------------------


def test_load_more_returns_the_next_rows_and_button(player, support_agent, client_for):
    _seed(player, n=140)
    client = client_for(support_agent)
    url = f"/players/{player.pk}/timeline/"
    first = timeline_page(player, support_agent)
    response = client.get(
        url, {"cursor": first.next_cursor.encode()}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'id="timeline-rows"' not in body
    second = timeline_page(player, support_agent, cursor=first.next_cursor)
    for event in second.events:
        assert f'data-event-id="{event.pk}"' in body
    for event in first.events:
        assert f'data-event-id="{event.pk}"' not in body


def test_filters_swap_the_whole_timeline(player, support_agent, client_for):
    _seed(player, n=40)
    response = client_for(support_agent).get(
        f"/players/{player.pk}/timeline/", {"kind": "payment"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert 'id="timeline"' in body and "<html" not in body
    shown = TimelineEvent.objects.filter(player=player, kind="payment", visibility="")
    for event in shown[:50]:
        assert f'data-event-id="{event.pk}"' in body


def test_timeline_page_works_without_htmx(player, support_agent, client_for):
    _seed(player, n=10)
    response = client_for(support_agent).get(f"/players/{player.pk}/timeline/")
    assert response.status_code == 200
    assert b"<html" in response.content
    assert b"Timeline" in response.content


def test_bad_cursor_is_a_400(player, support_agent, client_for):
    response = client_for(support_agent).get(
        f"/players/{player.pk}/timeline/", {"cursor": "nonsense"}
    )
    assert response.status_code == 400


def test_bad_dates_say_so(player, support_agent, client_for):
    response = client_for(support_agent).get(
        f"/players/{player.pk}/timeline/", {"date_from": "2025-05-02", "date_to": "2025-05-01"}
    )
    assert response.status_code == 200
    assert b"The end date is before the start date." in response.content
