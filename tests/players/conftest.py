"""Fixtures for the players tests: a player in brand A and staff of each role working there."""

import pytest

from tests.factories import PlayerFactory


@pytest.fixture(autouse=True)
def note_reasons(db):
    """The default reason codes (a flushed test database has lost the migration's rows)."""
    from players.defaults import ensure_note_reasons

    return ensure_note_reasons()


@pytest.fixture
def player(brand_a):
    return PlayerFactory(brand=brand_a, first_name="Maria", last_name="Rossi")


@pytest.fixture
def support_agent(make_staff):
    return make_staff("Support", username="agent")


@pytest.fixture
def risk_analyst(make_staff):
    return make_staff("Risk", username="risky")


@pytest.fixture
def compliance_officer(make_staff):
    return make_staff("Compliance", username="comply")
