"""Notes with reason codes, risk notes, tags."""

import pytest

from backoffice.models import AuditEvent
from players import services
from players.exceptions import EscalationRequired, InvalidInput, NothingToChange
from players.models import NoteReason, PlayerNote, PlayerTag, TimelineEvent
from players.selectors import player_notes
from tests.factories.players import NoteReasonFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def general_reason():
    return NoteReason.objects.get(code="contact")


@pytest.fixture
def risk_reason():
    return NoteReason.objects.get(code="risk-multi-account")


def test_default_reason_codes_cover_both_categories_and_match_the_migration():
    import importlib

    from players.defaults import DEFAULT_NOTE_REASONS, ensure_note_reasons

    cats = set(NoteReason.objects.values_list("category", flat=True))
    assert cats == {"general", "risk"}
    migration = importlib.import_module("players.migrations.0003_seed_note_reasons")
    assert migration.REASONS == DEFAULT_NOTE_REASONS
    NoteReason.objects.filter(code="contact").update(label="Renamed by an admin")
    assert ensure_note_reasons()["contact"].label == "Renamed by an admin"  # never overwritten


def test_general_note_is_visible_to_note_readers_only(player, support_agent, general_reason):
    note = services.do_add_player_note(
        player,
        reason=general_reason,
        body="Called about a late withdrawal.",
        acting_user=support_agent,
    )
    assert note.category == "general"
    assert note.author == support_agent
    entry = TimelineEvent.objects.get(player=player, kind="note")
    assert entry.visibility == "players.view_playernote"
    assert entry.action == "note.added"
    assert "late withdrawal" in entry.summary
    assert player_notes(player, support_agent, category="general") == [note]


def test_risk_note_needs_risk_permission_to_write_and_read(
    player, support_agent, risk_analyst, risk_reason
):
    with pytest.raises(EscalationRequired):
        services.do_add_player_note(
            player, reason=risk_reason, body="Shares a device with #12", acting_user=support_agent
        )
    assert not PlayerNote.objects.exists()

    note = services.do_add_player_note(
        player, reason=risk_reason, body="Shares a device with #12", acting_user=risk_analyst
    )
    assert note.category == "risk"
    entry = TimelineEvent.objects.get(player=player, kind="note")
    assert entry.visibility == "players.view_risk_notes"
    assert entry.action == "risk_note.added"
    assert AuditEvent.objects.filter(action="players.risk_note_added").count() == 1
    assert player_notes(player, support_agent, category="risk") == []
    assert player_notes(player, risk_analyst, category="risk") == [note]


def test_note_category_is_frozen_when_written(player, risk_analyst):
    reason = NoteReasonFactory(category="risk")
    note = services.do_add_player_note(
        player, reason=reason, body="Velocity", acting_user=risk_analyst
    )
    reason.category = "general"
    reason.save()
    note.refresh_from_db()
    assert note.category == "risk"


@pytest.mark.parametrize("body", ["", "   ", "x" * 4001])
def test_bad_note_bodies_are_refused(player, support_agent, general_reason, body):
    with pytest.raises(InvalidInput):
        services.do_add_player_note(
            player, reason=general_reason, body=body, acting_user=support_agent
        )
    assert not PlayerNote.objects.exists()


def test_untouched_template_is_refused(player, support_agent, general_reason):
    with pytest.raises(InvalidInput, match="Complete the template"):
        services.do_add_player_note(
            player, reason=general_reason, body=general_reason.template, acting_user=support_agent
        )


def test_inactive_reason_is_refused(player, support_agent):
    reason = NoteReasonFactory(is_active=False)
    with pytest.raises(InvalidInput):
        services.do_add_player_note(player, reason=reason, body="x", acting_user=support_agent)


def test_tag_and_untag(player, support_agent):
    vip = TagFactory(name="VIP")
    link = services.do_tag_player(player, vip, acting_user=support_agent)
    assert link.added_by == support_agent
    assert list(player.tags.all()) == [vip]
    with pytest.raises(NothingToChange):
        services.do_tag_player(player, vip, acting_user=support_agent)
    services.do_untag_player(player, vip, acting_user=support_agent)
    assert not PlayerTag.objects.exists()
    actions = list(
        TimelineEvent.objects.filter(player=player).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["tag.added", "tag.removed"]
    with pytest.raises(NothingToChange):
        services.do_untag_player(player, vip, acting_user=support_agent)


def test_bonus_manager_cannot_tag(player, make_staff):
    with pytest.raises(EscalationRequired):
        services.do_tag_player(player, TagFactory(), acting_user=make_staff("Bonus manager"))


def test_create_tag_rejects_duplicates_whatever_the_case(make_staff):
    admin = make_staff("Admin")
    services.do_create_tag(name="High roller", colour="warning", acting_user=admin)
    with pytest.raises(InvalidInput):
        services.do_create_tag(name="  high   ROLLER ", acting_user=admin)
    with pytest.raises(InvalidInput):
        services.do_create_tag(name="Other", colour="pink", acting_user=admin)


def test_update_tag(make_staff):
    admin = make_staff("Admin")
    tag = services.do_create_tag(name="Affiliate", acting_user=admin)
    other = services.do_create_tag(name="VIP", acting_user=admin)
    services.do_update_tag(
        tag, name="Affiliate X", description="From X", colour="info", acting_user=admin
    )
    tag.refresh_from_db()
    assert (tag.name, tag.colour) == ("Affiliate X", "info")
    with pytest.raises(InvalidInput):
        services.do_update_tag(other, name="affiliate x", description="", colour="info",
                               acting_user=admin)  # fmt: skip
