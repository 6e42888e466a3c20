"""The player matcher: exact indexed lookups and name prefixes, scoped to the user."""

import pytest
from django.db import connection

from backoffice.search import search_all
from players.models import Player
from players.selectors import player_search_q, search_players
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(brand_a):
    return {
        "maria": PlayerFactory(
            brand=brand_a, username="mrossi", email="maria.rossi@mail.test",
            phone="+35699001122", first_name="Maria", last_name="Rossi", external_ref="EXT-77",
        ),
        "anna": PlayerFactory(
            brand=brand_a, username="annamaria", email="am@mail.test", phone="+35699001133",
            first_name="Anna Maria", last_name="Rossetti",
        ),
        "percent": PlayerFactory(brand=brand_a, first_name="Per", last_name="100% Lucky"),
    }  # fmt: skip


def _find(query):
    return set(search_players(Player.objects.all(), query).values_list("username", flat=True))


def test_exact_identifiers(people):
    maria = people["maria"]
    assert _find(str(maria.pk)) >= {"mrossi"}
    assert _find(f"#{maria.pk}") >= {"mrossi"}
    assert _find("MARIA.ROSSI@mail.test") == {"mrossi"}
    assert _find("MRossi") == {"mrossi"}
    assert _find("EXT-77") == {"mrossi"}


@pytest.mark.parametrize(
    "phone", ["+35699001122", "+356 99 00 11 22", "0035699001122", "35699001122"]
)
def test_phone_in_any_usual_format(people, phone):
    assert _find(phone) == {"mrossi"}


def test_name_prefixes(people):
    assert _find("ross") == {"mrossi", "annamaria"}
    assert _find("Rossi") == {"mrossi"}
    assert _find("maria rossi") == {"mrossi"}
    assert _find("Anna Maria Ross") == {"annamaria"}
    assert _find("rossetti anna") == {"annamaria"}


def test_like_wildcards_in_the_query_are_literal(people):
    assert _find("100% Lu") == {people["percent"].username}
    assert _find("1_0% lu") == set()
    assert _find("_00% lu") == set()


def test_no_match_and_empty_query(people):
    assert _find("nobody-here") == set()
    assert player_search_q("   ") is None
    assert _find("") == set()


def test_name_search_never_uses_a_leading_wildcard():
    sql, params = Player.objects.filter(player_search_q("Maria Rossi")).query.sql_with_params()
    assert all(not str(p).startswith("%") for p in params)
    assert "ILIKE" in sql


def test_search_uses_indexes_not_a_scan(people):
    """With sequential scans priced out, the planner still finds a plan: every branch has an
    index that serves it (a branch without one would force a Seq Scan regardless)."""
    qs = Player.objects.filter(player_search_q("maria rossi")).order_by()
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan
    assert "player_name_trgm" in plan


def test_global_search_is_scoped(people, brand_b, make_staff):
    PlayerFactory(brand=brand_b, username="rossi-b", last_name="Rossi")
    user = make_staff("Support")
    hits = search_all(user, "rossi")
    labels = " ".join(h.label for h in hits if h.kind == "Player")
    assert "mrossi" in labels
    assert "rossi-b" not in labels
    admin = make_staff("Admin")  # no players.view_player
    assert all(h.kind != "Player" for h in search_all(admin, "rossi"))
