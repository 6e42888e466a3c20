"""Ticket services: opening, claiming, assigning, the status machine, notes, macros,
disputes, bulk actions and queue counts."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.models import AuditEvent
from players.exceptions import EscalationRequired
from players.models import TimelineEvent
from players.services import do_record_instrument
from support import services
from support.exceptions import (
    AlreadyClaimed,
    BulkActionRefused,
    InvalidInput,
    InvalidTransition,
    NothingToChange,
)
from support.models import SLA_BY_PRIORITY, Status, Ticket, TicketNote
from support.selectors import count_label, eligible_assignees, queue_counts
from tests.factories import PlayerFactory
from tests.factories.support import MacroFactory, TicketFactory

pytestmark = pytest.mark.django_db


def _open(player, user, **kwargs):
    kwargs.setdefault("subject", "Where is my withdrawal?")
    kwargs.setdefault("category", "withdrawal")
    return services.do_create_ticket(player, acting_user=user, **kwargs)


# -- opening --------------------------------------------------------------------------------


def test_open_sets_sla_and_writes_the_timeline(player, agent):
    before = timezone.now()
    ticket = _open(player, agent, priority="high", description="Requested 3 days ago")
    assert ticket.status == Status.NEW and ticket.assignee is None
    assert ticket.brand_id == player.brand_id
    assert before + timedelta(hours=4) <= ticket.sla_due_at <= timezone.now() + timedelta(hours=4)
    event = TimelineEvent.objects.get(player=player, kind="ticket")
    assert event.action == "ticket.opened"
    assert event.visibility == "support.view_ticket"
    assert event.object_type == "support.ticket" and event.object_id == str(ticket.pk)
    assert ticket.history.latest().history_user == agent


def test_open_and_assign_to_me(player, agent):
    ticket = _open(player, agent, assign_to_me=True)
    assert (ticket.status, ticket.assignee) == (Status.OPEN, agent)


def test_open_links_the_context_object_of_the_same_player(player, agent, brand_a):
    inst, _ = do_record_instrument(player, fingerprint="fp", kind="card", label="Visa 4242")
    ticket = _open(player, agent, object_type="players.playerinstrument", object_id=inst.pk)
    assert (ticket.object_type, ticket.object_id) == ("players.playerinstrument", str(inst.pk))

    stranger = PlayerFactory(brand=brand_a)
    theirs, _ = do_record_instrument(stranger, fingerprint="fp2", kind="card", label="MC")
    with pytest.raises(InvalidInput, match="another player"):
        _open(player, agent, object_type="players.playerinstrument", object_id=theirs.pk)
    with pytest.raises(InvalidInput):
        _open(player, agent, object_type="nope.model", object_id="1")
    with pytest.raises(InvalidInput):
        _open(player, agent, object_type="players.playerinstrument", object_id="999999")
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize(
    "bad",
    [{"subject": "  "}, {"category": "x"}, {"priority": "asap"}, {"team": "Admin"},
     {"channel": "pigeon"}],
)  # fmt: skip
def test_open_refuses_bad_input(player, agent, bad):
    with pytest.raises(InvalidInput):
        _open(player, agent, **bad)
    assert not Ticket.objects.exists()


def test_open_on_a_player_outside_scope_fails(brand_b, agent):
    from players.models import Player

    with pytest.raises(Player.DoesNotExist):
        _open(PlayerFactory(brand=brand_b), agent)


def test_dispute_starts_pending(player, agent):
    ticket = _open(player, agent, is_dispute=True)
    assert ticket.dispute_outcome == Ticket.DisputeOutcome.PENDING


# -- claiming and assigning -----------------------------------------------------------------


def test_claim(player, agent, other_agent):
    ticket = _open(player, agent)
    services.do_claim_ticket(ticket, acting_user=agent)
    assert (ticket.status, ticket.assignee) == (Status.OPEN, agent)
    with pytest.raises(NothingToChange):
        services.do_claim_ticket(ticket.pk, acting_user=agent)
    with pytest.raises(AlreadyClaimed, match="agent claimed it first"):
        services.do_claim_ticket(ticket.pk, acting_user=other_agent)
    ticket.refresh_from_db()
    assert ticket.assignee == agent


def test_assign_checks_the_assignee_covers_the_brand(player, agent, make_staff, brand_b):
    ticket = _open(player, agent)
    elsewhere = make_staff("Support", brands=[brand_b])
    no_tickets = make_staff("Admin")  # covers every brand, but does not work tickets
    inactive = make_staff("Support", is_active=False)
    for person in (elsewhere, no_tickets, inactive):
        with pytest.raises(InvalidInput):
            services.do_assign_ticket(ticket, assignee=person, acting_user=agent)
    payments = make_staff("Payments")
    services.do_assign_ticket(ticket, assignee=payments, team="Payments", acting_user=agent)
    ticket.refresh_from_db()
    assert (ticket.assignee, ticket.team, ticket.status) == (payments, "Payments", Status.OPEN)
    assert set(eligible_assignees(ticket.brand_id)) >= {agent, payments}
    services.do_assign_ticket(ticket, assignee=None, acting_user=agent)
    ticket.refresh_from_db()
    assert ticket.assignee is None
    with pytest.raises(NothingToChange):
        services.do_assign_ticket(ticket, assignee=None, acting_user=agent)


# -- status machine -------------------------------------------------------------------------


def test_resolve_needs_a_code_and_reopen_clears_it(player, agent):
    ticket = _open(player, agent)
    with pytest.raises(InvalidInput):
        services.do_change_ticket_status(ticket, Status.RESOLVED, acting_user=agent)
    services.do_change_ticket_status(
        ticket, Status.RESOLVED, acting_user=agent, resolution_code="answered",
        note="Explained the 24 h review",
    )  # fmt: skip
    assert ticket.resolved_at is not None and ticket.resolution_code == "answered"
    assert TicketNote.objects.get(ticket=ticket).body == "Explained the 24 h review"
    services.do_change_ticket_status(ticket, Status.OPEN, acting_user=agent)
    assert (ticket.resolution_code, ticket.resolved_at) == ("", None)
    services.do_change_ticket_status(
        ticket, Status.CLOSED, acting_user=agent, resolution_code="fixed"
    )
    assert ticket.closed_at is not None
    with pytest.raises(InvalidTransition):
        services.do_change_ticket_status(ticket, Status.OPEN, acting_user=agent)
    history = list(ticket.history.order_by("history_id").values_list("status", flat=True))
    assert history == ["new", "resolved", "open", "closed"]


def test_dispute_cannot_close_without_outcome(player, agent, compliance):
    ticket = _open(player, agent, is_dispute=True)
    with pytest.raises(InvalidInput, match="outcome"):
        services.do_change_ticket_status(
            ticket, Status.RESOLVED, acting_user=agent, resolution_code="answered"
        )
    with pytest.raises(EscalationRequired) as info:
        services.do_set_dispute(
            ticket, is_dispute=True, outcome="rejected", note="RNG verified", acting_user=agent
        )
    assert info.value.roles == ["Compliance"]
    with pytest.raises(InvalidInput, match="note"):
        services.do_set_dispute(ticket, is_dispute=True, outcome="rejected", acting_user=compliance)
    services.do_set_dispute(
        ticket, is_dispute=True, outcome="rejected", note="Round log shows a loss",
        acting_user=compliance,
    )  # fmt: skip
    assert AuditEvent.objects.filter(action="support.dispute_decided").count() == 1
    with pytest.raises(InvalidInput, match="stays a dispute"):
        services.do_set_dispute(ticket, is_dispute=False, acting_user=compliance)
    services.do_change_ticket_status(
        ticket, Status.RESOLVED, acting_user=agent, resolution_code="answered"
    )


def test_flag_and_unflag_a_pending_dispute(player, agent):
    ticket = _open(player, agent)
    services.do_set_dispute(ticket, is_dispute=True, acting_user=agent)
    assert (ticket.is_dispute, ticket.dispute_outcome) == (True, "pending")
    services.do_set_dispute(ticket, is_dispute=False, acting_user=agent)
    assert (ticket.is_dispute, ticket.dispute_outcome) == (False, "")


ALL_STATUSES = st.sampled_from(Status.values)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=st.lists(st.tuples(ALL_STATUSES, st.booleans()), min_size=1, max_size=8))
def test_status_machine_property(player, agent, moves):
    """Whatever is asked: the status only follows the map, resolved/closed tickets always
    carry a resolution code, open ones never do, and refused moves change nothing."""
    ticket = _open(player, agent)
    for target, with_code in moves:
        before = Ticket.objects.get(pk=ticket.pk)
        try:
            with transaction.atomic():
                services.do_change_ticket_status(
                    ticket.pk, target, acting_user=agent,
                    resolution_code="answered" if with_code else "",
                )  # fmt: skip
        except (InvalidTransition, InvalidInput):
            after = Ticket.objects.get(pk=ticket.pk)
            assert (after.status, after.resolution_code) == (before.status, before.resolution_code)
            continue
        after = Ticket.objects.get(pk=ticket.pk)
        assert target in Ticket.TRANSITIONS[before.status]
        assert after.status == target
        assert bool(after.resolution_code) == (target in (Status.RESOLVED, Status.CLOSED))


def test_priority_moves_the_sla(player, agent):
    ticket = _open(player, agent, priority="low")
    services.do_change_ticket_priority(ticket, "urgent", acting_user=agent)
    assert ticket.sla_due_at == ticket.created_at + SLA_BY_PRIORITY["urgent"]
    with pytest.raises(NothingToChange):
        services.do_change_ticket_priority(ticket, "urgent", acting_user=agent)


def test_sla_state():
    now = timezone.now()
    t = TicketFactory.build(priority="normal", created_at=now - timedelta(hours=23))
    t.sla_due_at = now + timedelta(hours=1)
    assert t.sla_state == "warning"
    t.sla_due_at = now - timedelta(minutes=1)
    assert t.sla_state == "breached"
    t.status = Status.PENDING_PLAYER
    assert t.sla_state == ""
    t.status, t.sla_due_at = Status.OPEN, now + timedelta(hours=20)
    assert t.sla_state == "ok"


# -- notes and macros -----------------------------------------------------------------------


def test_notes_go_to_the_timeline_behind_their_permission(player, agent):
    ticket = _open(player, agent)
    services.do_add_ticket_note(ticket, body="Asked PSP for a trace", acting_user=agent)
    services.do_add_ticket_note(ticket, body="We are checking", kind="reply", acting_user=agent)
    actions = list(
        TimelineEvent.objects.filter(player=player, visibility="support.view_ticketnote")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["ticket.note_added", "ticket.replied"]
    with pytest.raises(InvalidInput):
        services.do_add_ticket_note(ticket, body=" ", acting_user=agent)
    with pytest.raises(InvalidInput):
        services.do_add_ticket_note(ticket, body="x", kind="system", acting_user=agent)


def test_closed_ticket_takes_no_note(player, agent):
    ticket = _open(player, agent)
    services.do_change_ticket_status(ticket, "closed", acting_user=agent, resolution_code="spam")
    with pytest.raises(InvalidTransition):
        services.do_add_ticket_note(ticket, body="late", acting_user=agent)


def test_macro_adds_note_and_sets_status_in_one_step(player, agent):
    ticket = _open(player, agent)
    macro = MacroFactory(
        name="Ask for bank statement", body="Please send a bank statement.",
        set_status="pending_player", set_priority="high", set_team="Payments",
    )  # fmt: skip
    services.do_apply_macro(ticket, macro, acting_user=agent)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.team) == ("pending_player", "high", "Payments")
    note = TicketNote.objects.get(ticket=ticket)
    assert (note.body, note.kind, note.macro) == ("Please send a bank statement.", "reply", macro)


def test_refused_macro_leaves_nothing(player, agent):
    ticket = _open(player, agent, is_dispute=True)
    macro = MacroFactory(set_status="resolved", set_resolution_code="answered")
    with pytest.raises(InvalidInput):
        services.do_apply_macro(ticket, macro, acting_user=agent)
    assert not TicketNote.objects.exists()
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW


def test_macro_of_another_brand_is_refused(player, agent, brand_b):
    with pytest.raises(InvalidInput):
        services.do_apply_macro(_open(player, agent), MacroFactory(brand=brand_b),
                                acting_user=agent)  # fmt: skip


def test_save_macro_validates(make_staff):
    admin = make_staff("Admin")
    macro = services.do_save_macro(
        None, data={"name": "Chase", "body": "Any news?", "note_kind": "reply"}, acting_user=admin
    )
    assert macro.pk
    with pytest.raises(InvalidInput):
        services.do_save_macro(None, data={"name": "chase", "body": "x"}, acting_user=admin)
    with pytest.raises(InvalidInput):
        services.do_save_macro(
            None, data={"name": "Close it", "body": "x", "set_status": "closed"},
            acting_user=admin,
        )  # fmt: skip
    with pytest.raises(EscalationRequired):
        services.do_save_macro(macro, data={"body": "y"}, acting_user=make_staff("Support"))


# -- bulk -----------------------------------------------------------------------------------


def test_bulk_is_all_or_nothing(player, agent, other_agent, brand_b):
    a, b, c = (_open(player, agent) for _ in range(3))
    services.do_claim_ticket(c, acting_user=other_agent)
    with pytest.raises(BulkActionRefused) as info:
        services.do_bulk_update_tickets([a.pk, b.pk, c.pk], action="claim", acting_user=agent)
    assert set(info.value.errors) == {c.pk}
    assert not Ticket.objects.filter(assignee=agent).exists()

    outside = TicketFactory(player=PlayerFactory(brand=brand_b))
    with pytest.raises(BulkActionRefused) as info:
        services.do_bulk_update_tickets([a.pk, outside.pk], action="claim", acting_user=agent)
    assert info.value.errors == {outside.pk: "not found in your brands"}

    assert services.do_bulk_update_tickets([a.pk, b.pk], action="claim", acting_user=agent) == 2
    assert Ticket.objects.filter(assignee=agent).count() == 2
    changed = services.do_bulk_update_tickets(
        [a.pk, b.pk], action="status", status="resolved", resolution_code="answered",
        acting_user=agent,
    )  # fmt: skip
    assert changed == 2
    assert set(Ticket.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {
        "resolved"
    }


@pytest.mark.parametrize(
    "kwargs",
    [{"action": "fly"}, {"action": "assign"}, {"action": "priority", "priority": "x"},
     {"action": "status", "status": ""}],
)  # fmt: skip
def test_bulk_refuses_bad_requests(player, agent, kwargs):
    ticket = _open(player, agent)
    with pytest.raises(InvalidInput):
        services.do_bulk_update_tickets([ticket.pk], acting_user=agent, **kwargs)
    with pytest.raises(InvalidInput):
        services.do_bulk_update_tickets([], action="claim", acting_user=agent)


# -- queues ---------------------------------------------------------------------------------


def test_queue_counts(player, agent, other_agent, django_assert_num_queries):
    _open(player, agent)  # unassigned
    mine = _open(player, agent)
    services.do_claim_ticket(mine, acting_user=agent)
    theirs = _open(player, agent, team="Payments")
    services.do_claim_ticket(theirs, acting_user=other_agent)
    dispute = _open(player, agent, is_dispute=True)
    late = TicketFactory(player=player, sla_due_at=timezone.now() - timedelta(hours=1))
    TicketFactory(player=player, status="pending_player",
                  sla_due_at=timezone.now() - timedelta(hours=1))  # fmt: skip
    TicketFactory(player=player, status="closed", resolution_code="fixed")
    agent.groups.all()  # warm nothing: counts must still be one query plus the team lookup
    with django_assert_num_queries(2):
        counts = queue_counts(agent)
    assert counts == {
        "unassigned": 4, "mine": 1, "team": 5, "overdue": 1, "disputes": 1,
    }  # fmt: skip
    assert dispute.pk and late.pk


def test_queue_counts_are_bounded(player, agent, django_assert_num_queries):
    for _ in range(3):
        _open(player, agent)
    with django_assert_num_queries(2):
        counts = queue_counts(agent, limit=2)
    assert counts["unassigned"] == 3 and counts["mine"] == 0  # 3 = "more than 2"
    assert count_label(counts["unassigned"], limit=2) == "2+"
    assert count_label(counts["mine"], limit=2) == "0"
    assert count_label(1500) == "999+" and count_label(999) == "999"


def test_queue_counts_without_brands_are_zero(make_staff):
    nobody = make_staff("Support", brands=[])
    assert set(queue_counts(nobody).values()) == {0}
