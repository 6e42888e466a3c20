"""The players and support demo seeds: volumes, planted stories, links, determinism and
idempotence (the seed_demo command itself is tested in tests/test_demo_seed.py)."""

import io
import random
from datetime import UTC, datetime

import pytest

from backoffice import demo
from backoffice.staff_services import ensure_roles
from players import demo as players_demo
from players.models import Player, PlayerDevice, PlayerLogin, TimelineEvent
from players.selectors import linked_accounts
from support import demo as support_demo
from support.models import Macro, Ticket

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def _ctx(players=80, seed=11):
    ctx = demo.DemoContext(
        rng=random.Random(seed), players=players, now=NOW, stdout=io.StringIO(), seed=seed
    )
    ensure_roles()
    demo.seed(ctx)
    return ctx


def _fingerprint():
    return list(
        Player.objects.order_by("external_ref").values_list(
            "external_ref", "username", "email", "country", "currency", "status", "registered_at"
        )
    )


def test_players_seed_writes_consistent_players_with_stories():
    ctx = _ctx()
    players_demo.seed(ctx)
    assert Player.objects.count() == 80
    for code, brand in ctx.brands.items():
        spec = demo.BRAND_SPECS[code]
        for country, currency in Player.objects.filter(brand=brand).values_list(
            "country", "currency"
        ):
            assert currency == spec.currency
            assert country in spec.countries or code == "aurora"  # the Finnish twin
    assert not Player.objects.filter(registered_at__gt=NOW).exists()
    assert not PlayerLogin.objects.filter(occurred_at__gt=NOW).exists()
    # Every player has a registration event and a creation history row.
    assert TimelineEvent.objects.filter(action="player.registered").count() == 80
    assert Player.history.filter(history_type="+").count() == 80
    # The device roll-up matches the successful logins.
    for device in PlayerDevice.objects.all()[:50]:
        logins = PlayerLogin.objects.filter(
            player_id=device.player_id, device_id=device.device_id, succeeded=True
        )
        assert logins.count() == device.login_count


def test_self_excluded_player_is_linked_to_the_twin_on_another_brand(make_staff):
    ctx = _ctx()
    players_demo.seed(ctx)
    excluded = Player.objects.get(external_ref="demo-story-excluded")
    twin = Player.objects.get(external_ref="demo-story-excluded-twin")
    assert excluded.status == "self_excluded" and twin.status == "active"
    assert excluded.brand != twin.brand
    links = linked_accounts(twin, ctx.staff["Risk"])
    [link] = [lk for lk in links.visible if lk.player.pk == excluded.pk]
    assert link.kinds == {"device", "email", "identity"}
    # The ring shares a device and an IP within the hour.
    ring = Player.objects.get(external_ref="demo-story-ring-1")
    kinds = {
        lk.player.external_ref: lk.kinds for lk in linked_accounts(ring, ctx.staff["Risk"]).visible
    }
    for ref in ("demo-story-ring-2", "demo-story-ring-3", "demo-story-ring-4"):
        assert kinds[ref] >= {"device", "ip"}
    assert ring.block_bonuses
    assert ring.notes.filter(category="risk").exists()


def test_players_seed_is_deterministic_and_idempotent():
    ctx = _ctx(players=40, seed=5)
    players_demo.seed(ctx)
    first = _fingerprint()
    events = TimelineEvent.objects.count()
    players_demo.seed(_ctx(players=40, seed=5))
    assert _fingerprint() == first
    assert TimelineEvent.objects.count() == events


def test_players_seed_restores_indexes_and_foreign_keys():
    from django.db import connection

    def schema():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename LIKE 'players_%' ORDER BY 1"
            )
            indexes = [r[0] for r in cursor.fetchall()]
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid::regclass::text LIKE "
                "'players_%' AND contype = 'f' ORDER BY 1"
            )
            return indexes, [r[0] for r in cursor.fetchall()]

    before = schema()
    players_demo.seed(_ctx(players=30))
    assert schema() == before


def test_support_seed_plants_the_stories():
    ctx = _ctx(players=120)
    players_demo.seed(ctx)
    support_demo.seed(ctx)
    assert Macro.objects.count() == len(support_demo.MACROS)
    money = Ticket.objects.get(subject="Where is my money?")
    assert (money.status, money.priority, money.assignee) == ("new", "high", None)
    assert money.sla_state == "breached"  # 4 h 30 old, 4-hour SLA
    dispute = Ticket.objects.get(is_dispute=True, dispute_outcome="pending", category="game")
    assert dispute.team == "Game operations"
    assert Ticket.objects.filter(player__external_ref="demo-story-excluded").exists()
    assert Ticket.objects.filter(status="resolved").exclude(resolution_code="").exists()
    assert not Ticket.objects.filter(status__in=["resolved", "closed"], resolution_code="").exists()
    assert TimelineEvent.objects.filter(kind="ticket", action="ticket.opened").count() == (
        Ticket.objects.count()
    )
    count = Ticket.objects.count()
    support_demo.seed(ctx)
    assert Ticket.objects.count() == count


def test_zero_players_writes_nothing():
    ctx = _ctx(players=0)
    players_demo.seed(ctx)
    support_demo.seed(ctx)
    assert not Player.objects.exists() and not Ticket.objects.exists()
