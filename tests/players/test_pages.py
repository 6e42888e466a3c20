"""Player list and player page: scoping, filters, bounded queries, actions and escalation."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from players import services, timeline
from players.models import NoteReason, Player, PlayerTag
from tests.factories import PlayerFactory
from tests.factories.players import TagFactory

pytestmark = pytest.mark.django_db


def _count_queries(client, url, **kwargs):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, response.content[:500]
    return len(ctx.captured_queries), response


# -- list -----------------------------------------------------------------------------------


def test_list_shows_only_players_in_the_users_brands(brand_a, brand_b, make_staff, client_for):
    mine = PlayerFactory(brand=brand_a, username="in-scope")
    PlayerFactory(brand=brand_b, username="out-of-scope")
    response = client_for(make_staff("Support")).get("/players/")
    body = response.content.decode()
    assert f"/players/{mine.pk}/" in body
    assert "out-of-scope" not in body


def test_list_filters(brand_a, make_staff, client_for):
    vip = TagFactory(name="VIP")
    old = PlayerFactory(
        brand=brand_a, username="old-timer", country="SE", kyc_level=2,
        registered_at=timezone.now() - timedelta(days=400),
    )  # fmt: skip
    new = PlayerFactory(brand=brand_a, username="newbie", status="suspended", block_deposits=True)
    PlayerTag.objects.create(player=old, tag=vip, brand=brand_a)
    client = client_for(make_staff("Support"))

    def names(params):
        return {
            u
            for u in ("old-timer", "newbie")
            if u in client.get("/players/", params).content.decode()
        }

    assert names({"country": "se"}) == {"old-timer"}
    assert names({"status": "suspended"}) == {"newbie"}
    assert names({"kyc_level": "2"}) == {"old-timer"}
    assert names({"tag": vip.pk}) == {"old-timer"}
    assert names({"restriction": "any"}) == {"newbie"}
    assert names({"restriction": "none"}) == {"old-timer"}
    assert names({"restriction": "block_deposits"}) == {"newbie"}
    today = timezone.now().date().isoformat()
    assert names({"registered_from": today}) == {"newbie"}
    assert names({"registered_to": (timezone.now() - timedelta(days=300)).date()}) == {"old-timer"}
    assert names({"q": "newbie"}) == {"newbie"}
    assert names({"q": str(old.pk)}) == {"old-timer"}
    assert new.pk


def test_list_query_count_does_not_grow_with_rows(brand_a, make_staff, client_for):
    client = client_for(make_staff("Support"))
    PlayerFactory.create_batch(3, brand=brand_a)
    client.get("/players/")  # a session's first request keeps its permissions and brands
    few, _ = _count_queries(client, "/players/")
    PlayerFactory.create_batch(60, brand=brand_a)
    many, _ = _count_queries(client, "/players/")
    assert few == many
    assert many <= 10  # session, user, device, rows, bounded count, saved filters, …


def test_deep_pages_read_ids_first_and_keep_the_order(brand_a, brand_b, make_staff, client_for):
    mine = PlayerFactory.create_batch(7, brand=brand_a, country="MT")
    PlayerFactory.create_batch(3, brand=brand_b, country="MT")  # outside the agent's brands
    client = client_for(make_staff("Support"))
    expected = [p.pk for p in sorted(mine, key=lambda p: -p.pk)]
    pages = []
    for page in (1, 2, 3):
        response = client.get("/players/", {"country": "MT", "per_page": 3, "page": page})
        pages.append([row.record.pk for row in response.context["table"].paginated_rows])
    assert pages == [expected[:3], expected[3:6], expected[6:]]
    with CaptureQueriesContext(connection) as ctx:
        client.get("/players/", {"country": "MT", "per_page": 3, "page": 2})
    ids_query = [
        q["sql"] for q in ctx.captured_queries if 'SELECT "players_player"."id" AS "pk"' in q["sql"]
    ]
    assert len(ids_query) == 1 and "OFFSET 3" in ids_query[0]
    assert len(ctx.captured_queries) <= 10


def test_list_sorts_only_by_indexed_columns(brand_a, make_staff, client_for):
    PlayerFactory(brand=brand_a)
    client = client_for(make_staff("Support"))
    body = client.get("/players/").content.decode()
    assert "sort=registered_at" in body
    assert "sort=last_name" not in body and "sort=email" not in body


def test_htmx_gets_only_the_table(brand_a, make_staff, client_for):
    PlayerFactory(brand=brand_a, username="htmx-row")
    response = client_for(make_staff("Support")).get(
        "/players/", headers={"HX-Request": "true", "HX-Target": "list-table"}
    )
    body = response.content.decode()
    assert "htmx-row" in body and "<html" not in body


# -- player page ----------------------------------------------------------------------------


def _events(player, n):
    timeline.record_many(
        {"player": player, "kind": k, "action": "x.y", "summary": f"event {i}",
         "visibility": "players.view_risk_notes" if i % 5 == 0 else ""}
        for i, k in zip(range(n), ["payment", "game", "note", "bonus"] * n, strict=False)
    )  # fmt: skip


@pytest.mark.parametrize("role", ["Support", "Risk"])
def test_player_page_queries_do_not_grow_with_events(brand_a, make_staff, client_for, role):
    user = make_staff(role)
    client = client_for(user)
    player = PlayerFactory(brand=brand_a)
    other = PlayerFactory(brand=brand_a)
    services.do_record_login(player, ip="10.0.0.1", device_id="d")
    services.do_record_login(other, ip="10.0.0.1", device_id="d")
    client.get("/")  # a session's first request keeps its permissions and brands
    empty, _ = _count_queries(client, f"/players/{player.pk}/")
    _events(player, 300)
    reason = NoteReason.objects.get(code="contact")
    for i in range(15):
        services.do_add_player_note(player, reason=reason, body=f"n{i}", acting_user=user)
    full, response = _count_queries(client, f"/players/{player.pk}/")
    assert full == empty
    assert full <= 40
    assert response.content.decode().count("data-event-id=") == 50  # one page, not 300


def test_player_page_shows_header_panels_and_timeline(brand_a, make_staff, client_for):
    user = make_staff("Support")
    player = PlayerFactory(brand=brand_a, block_withdrawals=True, kyc_level=1)
    PlayerTag.objects.create(player=player, tag=TagFactory(name="High roller"), brand=brand_a)
    timeline.record(player, "payment", "deposit.credited", "Deposit 50.00 EUR credited")
    body = client_for(user).get(f"/players/{player.pk}/").content.decode()
    expected = [
        "Withdrawals blocked", "Level 1", "High roller", "Deposit 50.00 EUR credited",
        "Profile", "Linked accounts", "Devices and logins", "Change history", "Notes",
    ]  # fmt: skip
    for text in expected:
        assert text in body, text
    assert "Risk notes" not in body


def test_player_outside_scope_is_404(brand_b, make_staff, client_for):
    player = PlayerFactory(brand=brand_b)
    assert client_for(make_staff("Support")).get(f"/players/{player.pk}/").status_code == 404


def test_support_sees_escalation_for_block_and_close(brand_a, make_staff, client_for):
    player = PlayerFactory(brand=brand_a)
    body = client_for(make_staff("Support")).get(f"/players/{player.pk}/").content.decode()
    assert f"/players/{player.pk}/status/?status=suspended" in body
    assert "status=blocked" not in body
    assert "Needs escalation to Compliance, Risk" in body
    assert "Needs escalation to Compliance" in body  # self-exclusion


def test_risk_notes_are_shown_to_risk_and_their_reading_is_audited(brand_a, make_staff, client_for):
    from backoffice.models import AuditEvent

    risk = make_staff("Risk")
    player = PlayerFactory(brand=brand_a)
    services.do_add_player_note(
        player,
        reason=NoteReason.objects.get(code="risk-bonus-abuse"),
        body="Welcome bonus on 4 accounts",
        acting_user=risk,
    )
    body = client_for(risk).get(f"/players/{player.pk}/").content.decode()
    assert "Welcome bonus on 4 accounts" in body
    assert AuditEvent.objects.filter(action="players.risk_notes_viewed", actor=risk).count() == 1
    support_body = client_for(make_staff("Support")).get(f"/players/{player.pk}/").content.decode()
    assert "Welcome bonus on 4 accounts" not in support_body


# -- actions --------------------------------------------------------------------------------


def test_status_form_changes_status(brand_a, make_staff, client_for):
    player = PlayerFactory(brand=brand_a)
    client = client_for(make_staff("Support"))
    url = f"/players/{player.pk}/status/"
    page = client.get(url, {"status": "suspended"}).content.decode()
    assert 'value="suspended" selected' in page
    assert 'value="blocked"' not in page  # not offered: the role may not
    response = client.post(url, {"status": "suspended", "reason": "Chargeback under review"})
    assert response.status_code == 302
    player.refresh_from_db()
    assert player.status == "suspended"


def test_status_form_keeps_input_and_explains(brand_a, make_staff, client_for):
    player = PlayerFactory(brand=brand_a)
    client = client_for(make_staff("Support"))
    response = client.post(f"/players/{player.pk}/status/", {"status": "blocked", "reason": "x"})
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    response = client.post(f"/players/{player.pk}/status/", {"status": "suspended", "reason": ""})
    assert b"This field is required" in response.content
    player.refresh_from_db()
    assert player.status == "active"


def test_status_page_is_403_without_any_status_permission(brand_a, make_staff, client_for):
    player = PlayerFactory(brand=brand_a)
    client = client_for(make_staff("Payments"))
    assert client.get(f"/players/{player.pk}/status/").status_code == 403


def test_restrictions_form(brand_a, make_staff, client_for):
    player = PlayerFactory(brand=brand_a)
    client = client_for(make_staff("Risk"))
    url = f"/players/{player.pk}/restrictions/"
    response = client.post(url, {"block_deposits": "on", "reason": "Chargeback"})
    assert response.status_code == 302
    player.refresh_from_db()
    assert player.block_deposits and not player.block_play
    response = client.post(url, {"block_deposits": "on", "reason": "Again"})
    assert response.status_code == 200
    assert b"already as asked" in response.content


def test_note_form_offers_risk_reasons_only_to_risk(brand_a, make_staff, client_for):
    player = PlayerFactory(brand=brand_a)
    risk_reason = NoteReason.objects.get(code="risk-fraud")
    support_page = client_for(make_staff("Support")).get(f"/players/{player.pk}/notes/new/")
    assert risk_reason.label.encode() not in support_page.content
    client = client_for(make_staff("Risk"))
    assert risk_reason.label.encode() in client.get(f"/players/{player.pk}/notes/new/").content
    response = client.post(
        f"/players/{player.pk}/notes/new/", {"reason": risk_reason.pk, "body": "Card testing"}
    )
    assert response.status_code == 302
    assert player.notes.get().category == "risk"


def test_tags_page_adds_and_removes(brand_a, make_staff, client_for):
    player = PlayerFactory(brand=brand_a)
    vip = TagFactory(name="VIP")
    client = client_for(make_staff("Support"))
    url = f"/players/{player.pk}/tags/"
    assert client.post(url, {"tag": vip.pk}).status_code == 302
    assert list(player.tags.all()) == [vip]
    assert client.post(url, {"remove": vip.pk}).status_code == 302
    assert not player.tags.exists()


def test_tag_admin_pages(make_staff, client_for):
    client = client_for(make_staff("Admin"))
    assert (
        client.post("/players/tags/new/", {"name": "VIP", "colour": "warning"}).status_code == 302
    )
    response = client.post("/players/tags/new/", {"name": "vip", "colour": "warning"})
    assert b"already exists" in response.content
    assert b"VIP" in client.get("/players/tags/").content
    assert Player.objects.count() == 0


def test_player_export_is_a_csv_of_the_filtered_list(brand_a, make_staff, client_for):
    PlayerFactory(brand=brand_a, username="exported", country="SE")
    PlayerFactory(brand=brand_a, username="not-exported", country="MT")
    response = client_for(make_staff("Support")).get(
        "/players/", {"country": "SE", "export": "csv"}
    )
    body = b"".join(response.streaming_content).decode()
    assert "exported" in body and "not-exported" not in body
    assert body.splitlines()[0].startswith("id,brand,external_ref,username")
