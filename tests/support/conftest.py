"""Fixtures for the support tests: a player in brand A and staff of the ticket teams."""

import pytest

from tests.factories import PlayerFactory


@pytest.fixture
def player(brand_a):
    return PlayerFactory(brand=brand_a)


@pytest.fixture
def agent(make_staff):
    return make_staff("Support", username="agent")


@pytest.fixture
def other_agent(make_staff):
    return make_staff("Support", username="other-agent")


@pytest.fixture
def compliance(make_staff):
    return make_staff("Compliance", username="compliance")
