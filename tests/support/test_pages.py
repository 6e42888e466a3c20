"""Support pages: queues with live counts, claim over htmx, bulk, opening from the player page,
the ticket page's actions, macros, and the player page's ticket panel."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from players.services import do_record_instrument
from support import services
from support.models import Ticket, TicketNote
from tests.factories import PlayerFactory
from tests.factories.support import MacroFactory, TicketFactory

pytestmark = pytest.mark.django_db


def _queries(client, url, **kwargs):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, response.content[:400]
    return len(ctx.captured_queries), response


def test_queues_filter_and_count(player, agent, other_agent, client_for):
    mine = TicketFactory(player=player, subject="Mine one", assignee=agent, status="open")
    TicketFactory(player=player, subject="Nobody's", status="new")
    TicketFactory(player=player, subject="Old and done", status="closed", resolution_code="fixed")
    late = TicketFactory(player=player, subject="Late one",
                         sla_due_at=timezone.now() - timedelta(hours=2))  # fmt: skip
    TicketFactory(player=player, subject="Round dispute", is_dispute=True,
                  dispute_outcome="pending", status="open", assignee=other_agent)  # fmt: skip
    client = client_for(agent)

    body = client.get("/support/").content.decode()
    assert "Mine one" in body and "Nobody&#x27;s" in body and "Old and done" not in body
    assert 'id="queue-count-unassigned">2<' in body
    assert 'id="queue-count-mine">1<' in body
    assert 'id="queue-count-disputes">1<' in body
    assert "Round dispute" in body and "dispute</span>" in body
    assert 'id="queue-count-overdue">1<' in body
    assert "sla-breached" in body  # the late row is highlighted

    mine_body = client.get("/support/", {"queue": "mine"}).content.decode()
    assert "Mine one" in mine_body and "Late one" not in mine_body
    assert "Old and done" in client.get("/support/", {"queue": "all"}).content.decode()
    overdue = client.get("/support/", {"queue": "overdue"}).content.decode()
    assert f'data-ticket="{late.pk}"' in overdue and f'data-ticket="{mine.pk}"' not in overdue


def test_queue_page_query_count_does_not_grow(player, agent, client_for):
    client = client_for(agent)
    TicketFactory.create_batch(2, player=player)
    client.get("/support/")  # a session's first request keeps its permissions and brands
    few, _ = _queries(client, "/support/")
    for _ in range(40):
        TicketFactory(player=PlayerFactory(brand=player.brand), assignee=agent, status="open")
    many, _ = _queries(client, "/support/")
    assert few == many
    assert many <= 10


def test_claim_over_htmx_returns_the_cell_and_counts(player, agent, other_agent, client_for):
    ticket = TicketFactory(player=player)
    response = client_for(agent).post(
        f"/support/{ticket.pk}/claim/", headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<strong>You</strong>" in body
    assert 'id="queue-count-mine" hx-swap-oob="true">1<' in body
    assert 'id="queue-count-unassigned" hx-swap-oob="true">0<' in body
    response = client_for(other_agent).post(
        f"/support/{ticket.pk}/claim/", headers={"HX-Request": "true"}
    )
    assert "agent claimed it first" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.assignee == agent


def test_claim_without_htmx_redirects(player, agent, client_for):
    ticket = TicketFactory(player=player)
    response = client_for(agent).post(f"/support/{ticket.pk}/claim/")
    assert response.status_code == 302 and response["Location"] == f"/support/{ticket.pk}/"


def test_bulk_claim_and_refusal(player, agent, other_agent, client_for):
    a, b = TicketFactory(player=player), TicketFactory(player=player)
    taken = TicketFactory(player=player, assignee=other_agent, status="open")
    client = client_for(agent)
    response = client.post(
        "/support/bulk/",
        {"action": "claim", "selected": [a.pk, b.pk, taken.pk], "next": "/support/?queue=mine"},
        follow=True,
    )
    assert "Nothing was changed" in response.content.decode()
    assert not Ticket.objects.filter(assignee=agent).exists()
    response = client.post("/support/bulk/", {"action": "claim", "selected": [a.pk, b.pk],
                                              "next": "/support/?queue=mine"})  # fmt: skip
    assert response["Location"] == "/support/?queue=mine"
    assert Ticket.objects.filter(assignee=agent).count() == 2


def test_bulk_never_redirects_off_site(player, agent, client_for):
    ticket = TicketFactory(player=player)
    response = client_for(agent).post(
        "/support/bulk/", {"action": "claim", "selected": [ticket.pk], "next": "https://evil.test/"}
    )
    assert response["Location"] == "/support/"


def test_open_a_ticket_from_the_player_page_with_context(player, agent, client_for):
    inst, _ = do_record_instrument(player, fingerprint="fp", kind="card", label="Visa 4242")
    client = client_for(agent)
    page = client.get(f"/players/{player.pk}/").content.decode()
    assert f"/support/new/{player.pk}/" in page
    url = f"/support/new/{player.pk}/?object_type=players.playerinstrument&object_id={inst.pk}"
    form = client.get(url).content.decode()
    assert "players.playerinstrument #" in form
    response = client.post(url, {
        "subject": "Card declined twice", "category": "deposit", "priority": "high",
        "channel": "chat", "team": "Payments", "object_type": "players.playerinstrument",
        "object_id": inst.pk, "assign_to_me": "on",
    })  # fmt: skip
    ticket = Ticket.objects.get()
    assert response["Location"] == f"/support/{ticket.pk}/"
    assert (ticket.object_type, ticket.object_id) == ("players.playerinstrument", str(inst.pk))
    assert (ticket.assignee, ticket.team, ticket.status) == (agent, "Payments", "open")


def test_open_a_ticket_keeps_input_on_error(player, agent, client_for):
    response = client_for(agent).post(f"/support/new/{player.pk}/", {
        "subject": "Bonus missing", "category": "bonus", "priority": "normal",
        "channel": "email", "team": "Support", "object_type": "nope.thing", "object_id": "3",
    })  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    assert "is not a kind of object" in body
    assert 'value="Bonus missing"' in body
    assert not Ticket.objects.exists()


def test_ticket_page_and_a_refused_action(player, agent, client_for):
    ticket = services.do_create_ticket(player, subject="Where is my money?", acting_user=agent)
    client = client_for(agent)
    page = client.get(f"/support/{ticket.pk}/").content.decode()
    assert "Where is my money?" in page and "Claim" in page
    response = client.post(f"/support/{ticket.pk}/status/", {"status": "resolved", "note": "x"})
    assert response.status_code == 422
    assert "Choose how the ticket was resolved." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "new"
    response = client.post(
        f"/support/{ticket.pk}/status/",
        {"status": "resolved", "resolution_code": "answered", "note": "Paid yesterday"},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert "Paid yesterday" in client.get(f"/support/{ticket.pk}/").content.decode()


def test_note_macro_priority_assign_and_dispute_actions(player, agent, make_staff, client_for):
    ticket = services.do_create_ticket(player, subject="Round voided", acting_user=agent)
    macro = MacroFactory(name="Chasing the provider", body="We asked the provider.",
                         set_status="pending_internal")  # fmt: skip
    payments = make_staff("Payments")
    client = client_for(agent)
    url = f"/support/{ticket.pk}"
    assert (
        client.post(f"{url}/notes/", {"kind": "internal", "body": "Checked logs"}).status_code
        == 302
    )
    assert client.post(f"{url}/macro/", {"macro": macro.pk}).status_code == 302
    assert client.post(f"{url}/priority/", {"priority": "urgent"}).status_code == 302
    assert (
        client.post(f"{url}/assign/", {"assignee": payments.pk, "team": "Payments"}).status_code
        == 302
    )
    assert client.post(f"{url}/dispute/", {"is_dispute": "on"}).status_code == 302
    response = client.post(f"{url}/dispute/", {"is_dispute": "on", "outcome": "upheld",
                                               "note": "Refund"})  # fmt: skip
    assert response.status_code == 422
    assert "needs escalation to Compliance" in response.content.decode()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee, ticket.team) == (
        "pending_internal", "urgent", payments, "Payments",
    )  # fmt: skip
    assert ticket.is_dispute and ticket.dispute_outcome == "pending"
    assert TicketNote.objects.filter(ticket=ticket).count() == 2


def test_ticket_outside_scope_is_404(brand_b, agent, client_for):
    ticket = TicketFactory(player=PlayerFactory(brand=brand_b))
    client = client_for(agent)
    assert client.get(f"/support/{ticket.pk}/").status_code == 404
    assert client.post(f"/support/{ticket.pk}/claim/").status_code == 404


def test_player_page_tickets_panel_and_header(player, agent, client_for):
    client = client_for(agent)
    client.get("/")  # a session's first request keeps its permissions and brands
    before, _ = _queries(client, f"/players/{player.pk}/")
    for i in range(12):
        services.do_create_ticket(player, subject=f"Question {i}", acting_user=agent)
    after, response = _queries(client, f"/players/{player.pk}/")
    body = response.content.decode()
    assert after == before
    assert "12 open" in body
    start = body.index('id="panel-tickets"')
    panel = body[start : body.index("</section>", start)]
    assert "Question 11" in panel and "Question 3" not in panel  # the latest 8 only
    assert f"/support/?player={player.pk}&amp;queue=all" in body


def test_home_shows_support_counters(player, agent, client_for):
    TicketFactory(player=player)
    body = client_for(agent).get("/").content.decode()
    assert "Unassigned tickets" in body and "/support/?queue=unassigned" in body


def test_search_finds_a_ticket_by_number(player, agent, client_for):
    ticket = TicketFactory(player=player, subject="Lost deposit")
    body = client_for(agent).get("/search/", {"q": f"#{ticket.pk}"}).content.decode()
    assert "Lost deposit" in body


def test_macro_admin(make_staff, client_for):
    client = client_for(make_staff("Admin"))
    response = client.post("/support/macros/new/", {
        "name": "Docs please", "body": "Please upload your ID.", "note_kind": "reply",
        "set_status": "pending_player", "is_active": "on",
    })  # fmt: skip
    assert response.status_code == 302
    response = client.post("/support/macros/new/", {
        "name": "Close it", "body": "Done", "note_kind": "reply", "set_status": "closed",
    })  # fmt: skip
    assert "needs a resolution code" in response.content.decode()
    assert "Docs please" in client.get("/support/macros/").content.decode()


def test_ticket_page_queries_do_not_grow_with_notes(player, agent, client_for):
    ticket = services.do_create_ticket(player, subject="Long thread", acting_user=agent)
    client = client_for(agent)
    client.get(f"/support/{ticket.pk}/")  # warm the per-process caches (currencies)
    few, _ = _queries(client, f"/support/{ticket.pk}/")
    for i in range(25):
        services.do_add_ticket_note(ticket, body=f"Update {i}", acting_user=agent)
    many, response = _queries(client, f"/support/{ticket.pk}/")
    assert few == many
    assert "Update 24" in response.content.decode()


def test_ticket_export_is_a_csv_of_the_filtered_queue(player, agent, client_for):
    TicketFactory(player=player, subject="Exported one")
    response = client_for(agent).get("/support/", {"queue": "unassigned", "export": "csv"})
    body = b"".join(response.streaming_content).decode()
    header, *rows = body.strip().splitlines()
    assert header.startswith("id,brand,player_id,subject")
    assert any("Exported one" in row for row in rows)
