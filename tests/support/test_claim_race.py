"""Two agents claim the same ticket at the same moment: exactly one wins.

Real transactions on two database connections (threads); the claim locks the row, so the
second claimer waits for the first to commit, then finds the ticket taken.
"""

import threading
import time

import pytest
from django.db import connection

from players.models import TimelineEvent
from support import services
from support.exceptions import AlreadyClaimed
from support.models import Ticket
from tests.factories import PlayerFactory


@pytest.mark.django_db(transaction=True)
def test_two_agents_claim_at_once_and_one_wins(brand_a, make_staff, monkeypatch):
    first, second = make_staff("Support", username="ann"), make_staff("Support", username="bob")
    ticket = services.do_create_ticket(
        PlayerFactory(brand=brand_a), subject="Where is my money?", acting_user=first
    )
    inside = threading.Barrier(2, timeout=10)
    original = services._claim

    def slow_claim(locked, user):
        # Hold the row lock a moment so the other claimer is surely waiting on it.
        time.sleep(0.2)
        return original(locked, user)

    monkeypatch.setattr(services, "_claim", slow_claim)
    outcome: dict[str, str] = {}

    def claim(user):
        try:
            inside.wait()
            services.do_claim_ticket(ticket.pk, acting_user=user)
            outcome[user.username] = "won"
        except AlreadyClaimed as exc:
            outcome[user.username] = f"lost: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(v.split(":")[0] for v in outcome.values()) == ["lost", "won"]
    winner = next(name for name, v in outcome.items() if v == "won")
    loser = next(name for name, v in outcome.items() if v != "won")
    assert f"{winner} claimed it first" in outcome[loser]
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.assignee.username == winner
    assert ticket.status == "open"
    assert ticket.history.filter(history_change_reason="Claimed").count() == 1
    assert TimelineEvent.objects.filter(action="ticket.claimed").count() == 1
