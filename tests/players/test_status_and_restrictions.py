"""Player status machine and restrictions: transitions, permissions, records, enforcement."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.models import AuditEvent
from players import services
from players.exceptions import (
    EscalationRequired,
    InvalidInput,
    InvalidStatusTransition,
    NothingToChange,
    RestrictionError,
)
from players.models import Player, TimelineEvent
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db
Status = Player.Status


def test_suspend_writes_history_audit_and_timeline(player, support_agent):
    services.do_change_player_status(
        player, Status.SUSPENDED, acting_user=support_agent, reason="Card dispute pending"
    )
    player.refresh_from_db()
    assert player.status == Status.SUSPENDED
    assert player.status_reason == "Card dispute pending"

    last = player.history.latest()
    assert last.history_user == support_agent
    assert last.history_change_reason == "Card dispute pending"

    event = AuditEvent.objects.get(action="players.status_changed")
    assert event.actor == support_agent
    assert event.before["status"] == "active"
    assert event.after["status"] == "suspended"
    assert event.object_id == str(player.pk)

    entry = TimelineEvent.objects.get(player=player, action="status.changed")
    assert entry.kind == "account"
    assert entry.actor_label == support_agent.username
    assert "Active → Suspended" in entry.summary
    assert entry.visibility == ""


def test_caller_instance_is_refreshed(player, support_agent):
    services.do_change_player_status(
        player, Status.SUSPENDED, acting_user=support_agent, reason="x"
    )
    assert player.status == Status.SUSPENDED


def test_support_must_escalate_a_block_to_risk_or_compliance(player, support_agent):
    with pytest.raises(EscalationRequired) as info:
        services.do_change_player_status(
            player, Status.BLOCKED, acting_user=support_agent, reason="fraud"
        )
    assert info.value.permission == "players.block_player"
    assert info.value.roles == ["Compliance", "Risk"]
    assert "escalation to Compliance, Risk" in str(info.value)
    player.refresh_from_db()
    assert player.status == Status.ACTIVE
    assert not TimelineEvent.objects.filter(player=player).exists()
    assert not AuditEvent.objects.filter(action="players.status_changed").exists()


def test_only_compliance_applies_self_exclusion(player, risk_analyst, compliance_officer):
    with pytest.raises(EscalationRequired) as info:
        services.do_change_player_status(
            player, Status.SELF_EXCLUDED, acting_user=risk_analyst, reason="asked"
        )
    assert info.value.roles == ["Compliance"]
    services.do_change_player_status(
        player, Status.SELF_EXCLUDED, acting_user=compliance_officer, reason="Player asked, 6m"
    )
    assert player.status == Status.SELF_EXCLUDED


def test_transition_not_in_map_is_refused(player, compliance_officer):
    services.do_change_player_status(
        player, Status.BLOCKED, acting_user=compliance_officer, reason="fraud"
    )
    with pytest.raises(InvalidStatusTransition):
        services.do_change_player_status(
            player, Status.SUSPENDED, acting_user=compliance_officer, reason="downgrade"
        )
    with pytest.raises(InvalidStatusTransition):
        services.do_change_player_status(
            player, Status.BLOCKED, acting_user=compliance_officer, reason="again"
        )


@pytest.mark.parametrize("reason", ["", "   ", "x" * 301])
def test_reason_is_required_and_bounded(player, support_agent, reason):
    with pytest.raises(InvalidInput):
        services.do_change_player_status(
            player, Status.SUSPENDED, acting_user=support_agent, reason=reason
        )
    player.refresh_from_db()
    assert player.status == Status.ACTIVE


def test_player_outside_scope_does_not_exist_for_the_user(brand_b, support_agent):
    other = PlayerFactory(brand=brand_b)
    with pytest.raises(Player.DoesNotExist):
        services.do_change_player_status(
            other, Status.SUSPENDED, acting_user=support_agent, reason="x"
        )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=st.lists(st.sampled_from(Status.values), min_size=1, max_size=8))
def test_status_machine_property(brand_a, compliance_officer, moves):
    """Whatever moves are asked, the status only ever follows the map, and each accepted
    move leaves exactly one timeline event and one audit event; refused ones leave none."""
    player = PlayerFactory(brand=brand_a)
    accepted = 0
    for target in moves:
        before = player.status
        try:
            with transaction.atomic():
                services.do_change_player_status(
                    player.pk, target, acting_user=compliance_officer, reason="property"
                )
        except InvalidStatusTransition:
            assert target not in Player.STATUS_TRANSITIONS[before]
            player.refresh_from_db()
            assert player.status == before
            continue
        accepted += 1
        assert target in Player.STATUS_TRANSITIONS[before]
        player.refresh_from_db()
        assert player.status == target
    assert TimelineEvent.objects.filter(player=player, action="status.changed").count() == accepted
    assert (
        AuditEvent.objects.filter(action="players.status_changed", object_id=str(player.pk)).count()
        == accepted
    )


# -- restrictions ---------------------------------------------------------------------------


def test_restrictions_switch_on_and_off_with_a_record(player, risk_analyst):
    services.do_set_player_restrictions(
        player,
        {"block_deposits": True, "block_bonuses": True},
        acting_user=risk_analyst,
        reason="Chargeback received",
    )
    player.refresh_from_db()
    assert player.block_deposits and player.block_bonuses
    assert not player.block_withdrawals
    entry = TimelineEvent.objects.get(player=player, action="restrictions.changed")
    assert "bonuses blocked" in entry.summary and "deposits blocked" in entry.summary
    assert entry.data["changes"] == {"block_deposits": True, "block_bonuses": True}
    event = AuditEvent.objects.get(action="players.restrictions_changed")
    assert event.before == {"block_deposits": False, "block_bonuses": False}
    assert player.history.latest().history_change_reason == "Chargeback received"

    services.do_set_player_restrictions(
        player,
        {"block_deposits": False, "block_bonuses": True},
        acting_user=risk_analyst,
        reason="Chargeback won",
    )
    player.refresh_from_db()
    assert not player.block_deposits and player.block_bonuses
    latest = TimelineEvent.objects.filter(player=player).order_by("-id").first()
    assert latest.data["changes"] == {"block_deposits": False}


def test_restriction_without_change_writes_nothing(player, risk_analyst):
    with pytest.raises(NothingToChange):
        services.do_set_player_restrictions(
            player, {"block_play": False}, acting_user=risk_analyst, reason="noop"
        )
    assert not TimelineEvent.objects.filter(player=player).exists()


def test_unknown_restriction_is_refused(player, risk_analyst):
    with pytest.raises(InvalidInput):
        services.do_set_player_restrictions(
            player, {"block_everything": True}, acting_user=risk_analyst, reason="x"
        )


def test_support_escalates_restrictions(player, support_agent):
    with pytest.raises(EscalationRequired) as info:
        services.do_set_player_restrictions(
            player, {"block_deposits": True}, acting_user=support_agent, reason="x"
        )
    assert set(info.value.roles) == {"Compliance", "Payments", "Risk"}


# -- enforcement ----------------------------------------------------------------------------


def test_blocked_deposit_is_refused(player, risk_analyst):
    services.assert_may_deposit(player)  # allowed while nothing blocks it
    services.do_set_player_restrictions(
        player, {"block_deposits": True}, acting_user=risk_analyst, reason="Chargeback"
    )
    with pytest.raises(RestrictionError) as info:
        services.assert_may_deposit(player.pk)
    assert info.value.activity == "deposit"
    assert info.value.player_id == player.pk
    assert "deposit is blocked" in str(info.value)
    # Other activities are untouched by this restriction.
    services.assert_may_withdraw(player)
    services.assert_may_play(player)


def test_stale_instance_cannot_slip_a_deposit_through(player, risk_analyst):
    stale = Player.objects.get(pk=player.pk)
    Player.objects.filter(pk=player.pk).update(block_deposits=True)
    assert stale.block_deposits is False
    with pytest.raises(RestrictionError):
        services.assert_may_deposit(stale)


@pytest.mark.parametrize(
    ("status", "deposit", "withdraw", "play", "bonus"),
    [
        (Status.ACTIVE, True, True, True, True),
        (Status.SUSPENDED, False, False, False, False),
        (Status.BLOCKED, False, False, False, False),
        (Status.CLOSED, False, True, False, False),
        (Status.SELF_EXCLUDED, False, True, False, False),
    ],
)
def test_status_decides_activities(brand_a, status, deposit, withdraw, play, bonus):
    player = PlayerFactory(brand=brand_a, status=status)
    for check, allowed in [
        (services.assert_may_deposit, deposit),
        (services.assert_may_withdraw, withdraw),
        (services.assert_may_play, play),
        (services.assert_may_receive_bonus, bonus),
    ]:
        if allowed:
            check(player)
        else:
            with pytest.raises(RestrictionError):
                check(player)


def test_assert_may_inside_a_transaction_reads_for_share(player, django_assert_num_queries):
    with transaction.atomic(), django_assert_num_queries(1) as ctx:
        services.assert_may_deposit(player)
    assert ctx.captured_queries[0]["sql"].rstrip().endswith("FOR SHARE")
