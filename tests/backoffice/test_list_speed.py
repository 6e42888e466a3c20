"""What keeps list pages fast without changing them: the rows drawn in one pass (the same HTML
as django-tables2's template), permissions and brands kept in the session (and forgotten the
moment an admin changes them), filter choices kept between requests, and a session row
written once a minute rather than on every request."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.template import engines
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from backoffice.audit import record_event
from backoffice.middleware import SESSION_REFRESH_INTERVAL
from tests.factories import PlayerFactory, TicketFactory
from tests.factories.players import TagFactory

pytestmark = pytest.mark.django_db

PLAYERS = "/players/"
TICKETS = reverse("support:ticket_list")
AUDIT = reverse("backoffice:audit_list")


def _norm(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    html = re.sub(r">\s+", ">", html)
    html = re.sub(r"\s+<", "<", html)
    return re.sub(r"\s+", " ", html).strip()


def _both_ways(response) -> tuple[str, str]:
    """The response's table drawn by django-tables2's own template and by the list layout's."""
    table, request = response.context["table"], response.wsgi_request
    engine = engines["django"]
    out = []
    for name in ("django_tables2/bootstrap5-responsive.html", "layouts/_table.html"):
        tpl = engine.from_string("{% load django_tables2 %}{% render_table table name %}")
        out.append(_norm(tpl.render({"table": table, "name": name}, request)))
    return out[0], out[1]


def _queries(client, url, **params) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


# --- the rows ------------------------------------------------------------------------------


def test_player_rows_are_drawn_as_django_tables2_draws_them(brand_a, make_staff, client_for):
    client = client_for(make_staff("Support"))
    PlayerFactory(brand=brand_a, username="blocked-one", block_deposits=True, status="blocked")
    PlayerFactory.create_batch(3, brand=brand_a)
    response = client.get(PLAYERS)
    theirs, ours = _both_ways(response)
    assert ours == theirs
    assert 'href="/players/' in ours and "blocked-one" in ours
    assert 'data-status="Blocked"' in ours or 'data-status="blocked"' in ours


def test_ticket_rows_with_row_attrs_checkbox_and_template_cells(brand_a, make_staff, client_for):
    agent = make_staff("Support")
    client = client_for(agent)
    player = PlayerFactory(brand=brand_a)
    TicketFactory(brand=brand_a, player=player, subject="Mine", assignee=agent)
    TicketFactory(brand=brand_a, player=player, subject="Nobody's <b>", is_dispute=True)
    response = client.get(TICKETS)
    theirs, ours = _both_ways(response)
    assert ours == theirs
    assert "<strong>You</strong>" in ours  # the assignee template cell, in the page's context
    assert "Claim" in ours and 'name="selected"' in ours and "data-ticket=" in ours
    assert "Nobody&#x27;s &lt;b&gt;" in ours  # escaped as before


def test_audit_rows_and_the_empty_table(brand_a, make_staff, client_for):
    client = client_for(make_staff("Auditor", brands=[]))
    for i in range(3):
        record_event("tests.rows", brand=brand_a if i else None, summary=f"row {i}")
    theirs, ours = _both_ways(client.get(AUDIT, {"action": "tests.rows"}))
    assert ours == theirs
    theirs, ours = _both_ways(client.get(AUDIT, {"action": "nothing.like.this"}))
    assert ours == theirs
    assert "No audit event matches these filters" in ours


# --- queries per page ------------------------------------------------------------------------


def test_list_pages_stay_within_ten_queries(brand_a, make_staff, client_for):
    agent = make_staff("Support")
    client = client_for(agent)
    player = PlayerFactory(brand=brand_a)
    PlayerFactory.create_batch(30, brand=brand_a)
    TicketFactory.create_batch(5, brand=brand_a, player=player)
    tag = TagFactory()
    for url, params in (
        (PLAYERS, {}),
        (PLAYERS, {"status": "active", "country": "MT", "tag": tag.pk, "brand": brand_a.pk}),
        (PLAYERS, {"q": player.username}),
        (TICKETS, {"status": "open", "priority": "high", "brand": brand_a.pk}),
        (TICKETS, {"queue": "team"}),
    ):
        client.get(url, params)  # the session's first request fills its caches
        count, sql = _queries(client, url, **params)
        assert count <= 10, (url, params, sql)
        # Permissions, brands, roles and filter choices come from the session and the cache.
        assert not [q for q in sql if "auth_permission" in q or "guardian_" in q], sql
        assert not [q for q in sql if 'FROM "players_tag"' in q], sql
        assert not [q for q in sql if q.startswith('UPDATE "django_session"')], sql


def test_scoped_and_superuser_lists_cost_the_same_queries(brand_a, make_staff, client_for):
    PlayerFactory.create_batch(5, brand=brand_a)
    scoped = client_for(make_staff("Support"))
    superuser = client_for(make_staff(None, is_superuser=True))
    scoped.get(PLAYERS)
    superuser.get(PLAYERS)
    assert _queries(scoped, PLAYERS)[0] <= _queries(superuser, PLAYERS)[0] + 1


# --- the permission cache -----------------------------------------------------------------------


def test_brand_taken_away_takes_effect_on_the_next_request(
    brand_a, brand_b, make_staff, client_for
):
    agent = make_staff("Support", brands=[brand_a, brand_b])
    client = client_for(agent)
    PlayerFactory(brand=brand_b, username="in-beta")
    assert "in-beta" in client.get(PLAYERS).content.decode()
    assert "in-beta" in client.get(PLAYERS).content.decode()  # from the session now
    remove_perm("backoffice.access_brand", agent, brand_b)
    assert "in-beta" not in client.get(PLAYERS).content.decode()
    assign_perm("backoffice.access_brand", agent, brand_b)
    assert "in-beta" in client.get(PLAYERS).content.decode()


def test_role_taken_away_takes_effect_on_the_next_request(role_groups, make_staff, client_for):
    agent = make_staff("Support")
    client = client_for(agent)
    assert client.get(PLAYERS).status_code == 200
    assert client.get(PLAYERS).status_code == 200
    agent.groups.remove(role_groups["Support"])
    assert client.get(PLAYERS).status_code == 403
    agent.groups.add(role_groups["Support"])
    assert client.get(PLAYERS).status_code == 200


def test_permission_taken_from_a_role_takes_effect_on_the_next_request(
    role_groups, make_staff, client_for
):
    from django.contrib.auth.models import Permission

    client = client_for(make_staff("Support"))
    assert client.get(PLAYERS).status_code == 200
    view = Permission.objects.get(codename="view_player", content_type__app_label="players")
    role_groups["Support"].permissions.remove(view)
    assert client.get(PLAYERS).status_code == 403


def test_deactivated_user_is_refused_at_once(make_staff, client_for):
    agent = make_staff("Support")
    client = client_for(agent)
    assert client.get(PLAYERS).status_code == 200
    type(agent).objects.filter(pk=agent.pk).update(is_active=False)  # behind every signal
    assert client.get(PLAYERS).status_code != 200


# --- filter choices ------------------------------------------------------------------------------


def test_new_tag_is_offered_and_accepted_at_once(brand_a, make_staff, client_for):
    client = client_for(make_staff("Support"))
    TagFactory(name="vip")
    assert "vip" in client.get(PLAYERS).content.decode()
    fresh = TagFactory(name="fresh-tag")
    response = client.get(PLAYERS, {"tag": fresh.pk})
    body = response.content.decode()
    assert "fresh-tag" in body and "Some filters are not valid" not in body
    gone = fresh.pk
    fresh.delete()
    body = client.get(PLAYERS, {"tag": gone}).content.decode()
    assert "Select a valid choice" in body


def test_brand_choice_outside_the_users_brands_is_refused(brand_a, brand_b, make_staff, client_for):
    client = client_for(make_staff("Support"))
    body = client.get(PLAYERS, {"brand": brand_b.pk}).content.decode()
    assert "Select a valid choice" in body
    assert brand_b.name not in body.split('name="brand"')[1].split("</select>")[0]
    body = client.get(PLAYERS, {"brand": "not-a-number"}).content.decode()
    assert "Select a valid choice" in body


# --- the session row ------------------------------------------------------------------------------


def test_session_row_is_written_once_a_minute_not_on_every_request(make_staff, client_for):
    client = client_for(make_staff("Support"))
    client.get(PLAYERS)
    key = client.session.session_key
    before = Session.objects.get(session_key=key).expire_date
    _, sql = _queries(client, PLAYERS)
    assert not [q for q in sql if "django_session" in q and not q.startswith("SELECT")]
    assert Session.objects.get(session_key=key).expire_date == before
    # A minute later the next request pushes the idle expiry forward again.
    session = client.session
    session["seen_at"] = time.time() - SESSION_REFRESH_INTERVAL - 1
    session.save()
    Session.objects.filter(session_key=key).update(expire_date=before - timedelta(minutes=5))
    client.get(PLAYERS)
    renewed = Session.objects.get(session_key=key).expire_date
    assert renewed > timezone.now() + timedelta(minutes=14)


def test_filter_drop_downs_are_drawn_as_django_draws_them(brand_a, make_staff, rf):
    from backoffice.tables_speed import speed_up_selects
    from players.filtersets import PlayerFilterSet
    from support.filtersets import TicketFilterSet

    TagFactory(name='"quoted" & <tag>')
    request = rf.get("/")
    request.user = make_staff("Support")
    data = {"status": ["active", "blocked"], "brand": str(brand_a.pk), "kyc_level": "2"}
    for filterset_class in (PlayerFilterSet, TicketFilterSet):
        plain = filterset_class(data, request=request).form
        fast = filterset_class(data, request=request).form
        speed_up_selects(fast)
        for name in plain.fields:
            assert str(fast[name]) == str(plain[name]), name
