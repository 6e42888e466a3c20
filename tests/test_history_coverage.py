"""Every model of our apps keeps a change history (simple-history), except tables that are
their own history; and a change made through the UI leaves one history row naming the actor."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import reverse
from simple_history.models import HistoricalChanges

from backoffice.models import SavedFilter

OUR_APPS = settings.OUR_APPS

# Tables that need no simple-history, each with the reason. Append-only tables are their own
# history: a row is written once and never changed (most have a trigger saying so), so a
# historical copy would only duplicate it.
EXEMPT: dict[str, str] = {
    "backoffice.auditevent": "append-only and hash-chained; the audit trail itself",
    "backoffice.staffsession": "a login's session pointer, written once and deleted at logout",
    "players.timelineevent": "append-only: the player timeline is a log of events",
    "players.playerdevice": "a roll-up of players.PlayerLogin, which is the append-only record",
}

# Append-only kinds other apps add, matched by class name so a new one needs no edit here:
# ledger entries and transactions (money moves by appending, never by editing), inbox and
# outbox events (a PSP callback or an outgoing message as received or sent), state-machine
# transitions (the status history of their object), login records and refused webhooks.
EXEMPT_NAME_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"LedgerEntry$",
        r"LedgerTransaction$",
        r"InboxEvent$",
        r"OutboxEvent$",
        r"Transition$",
        r"Login$",
        r"WebhookRejection$",
    )
)


def _our_models() -> list:
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label in OUR_APPS and not issubclass(model, HistoricalChanges)
    ]


def _has_history(model) -> bool:
    return hasattr(model._meta.concrete_model._meta, "simple_history_manager_attribute")


def _exempt(model) -> bool:
    return model._meta.label_lower in EXEMPT or any(
        p.search(model.__name__) for p in EXEMPT_NAME_PATTERNS
    )


def test_every_model_keeps_a_history_or_is_exempt_with_a_reason():
    missing = sorted(
        model._meta.label
        for model in _our_models()
        if not model._meta.proxy and not _has_history(model) and not _exempt(model)
    )
    assert not missing, (
        "These models have no simple-history (add `history = audit_history()`), or, if they "
        f"are append-only, an exemption with its reason in this file: {missing}"
    )


def test_proxy_models_share_their_concrete_models_history():
    for model in _our_models():
        if model._meta.proxy and not _exempt(model._meta.concrete_model):
            assert _has_history(model), model._meta.label


def test_exemptions_name_real_models_without_history():
    """A stale exemption (model renamed, or given a history since) is removed, not kept."""
    labels = {m._meta.label_lower: m for m in _our_models()}
    for label in EXEMPT:
        assert label in labels, f"{label} is exempt but no longer exists"
        assert not _has_history(labels[label]), f"{label} has a history now: drop its exemption"


def test_history_rows_carry_the_ip_column():
    """The project's base (`backoffice.history.HistoricalRowBase`) is on every history."""
    for model in _our_models():
        if _has_history(model) and not model._meta.proxy:
            historical = getattr(model, model._meta.simple_history_manager_attribute).model
            assert "history_ip" in {f.name for f in historical._meta.fields}, model._meta.label


@pytest.mark.django_db
def test_saving_a_filter_through_the_ui_leaves_one_history_row_with_the_actor(
    make_staff, client_for
):
    user = make_staff("Compliance")
    response = client_for(user).post(
        reverse("backoffice:savedfilter_create"),
        {
            "list_name": "backoffice:audit_list",
            "name": "Exports",
            "query": "action=audit.exported",
            "next": "/",
        },
    )
    assert response.status_code == 302
    saved = SavedFilter.objects.get(user=user)
    rows = list(saved.history.all())
    assert len(rows) == 1
    assert (rows[0].history_type, rows[0].history_user, rows[0].history_ip) == (
        "+",
        user,
        "127.0.0.1",
    )


@pytest.mark.django_db
def test_deleting_a_filter_through_the_ui_leaves_one_more_row_with_the_actor(
    make_staff, client_for
):
    user = make_staff("Compliance")
    client = client_for(user)
    client.post(
        reverse("backoffice:savedfilter_create"),
        {"list_name": "backoffice:audit_list", "name": "Tmp", "query": "action=x", "next": "/"},
    )
    saved = SavedFilter.objects.get(user=user)
    client.post(reverse("backoffice:savedfilter_delete", kwargs={"pk": saved.pk}), {"next": "/"})
    rows = list(SavedFilter.history.filter(id=saved.pk).order_by("history_id"))
    assert [r.history_type for r in rows] == ["+", "-"]
    assert rows[-1].history_user == user
