"""Fixtures for the payments tests: a card PSP and an open-banking PSP on brand A, a player, a
helper to fund wallets through a real credited deposit, and Celery run inline."""

from __future__ import annotations

import pytest

from payments.models import Account, PaymentMethod
from payments.services import ledger
from tests.factories import PaymentMethodFactory, PlayerFactory, PspFactory


@pytest.fixture(autouse=True)
def _payments_world(currencies, celery_inline):
    """Every test here has the seeded currencies and runs Celery tasks inline."""


@pytest.fixture
def bank_psp(brand_a):
    return PspFactory(
        brand=brand_a,
        code="openbank-alpha",
        name="OpenBank",
        adapter="openbank",
        signing_keys={"k1": "ob-secret-one-0123456789", "k0": "ob-secret-old-0123456789"},
    )


@pytest.fixture
def bank_method(bank_psp):
    return PaymentMethodFactory(
        psp=bank_psp, kind=PaymentMethod.Kind.OPEN_BANKING, currency_id="EUR"
    )


@pytest.fixture
def player(brand_a):
    return PlayerFactory(brand=brand_a, currency="EUR", country="MT")


@pytest.fixture
def house(brand_a):
    """house(kind, ref="") -> a house account of brand A in EUR."""

    def get(kind=Account.Kind.PSP_CLEARING, ref="cardpay-alpha", currency="EUR"):
        return ledger.get_house_account(brand_a.pk, kind, currency, ref=ref)

    return get


@pytest.fixture
def fund(house):
    """fund(player, amount, key=None): credit cash straight from PSP clearing."""
    counter = {"n": 0}

    def do(player, amount, currency="EUR"):
        counter["n"] += 1
        wallet = ledger.get_wallet(player, currency)
        return ledger.do_post_transfer(
            idempotency_key=f"test-fund:{player.pk}:{counter['n']}",
            kind="deposit",
            legs=[(house(currency=currency), -amount), (wallet["cash"], amount)],
            brand=player.brand_id,
            player=player,
        )

    return do


@pytest.fixture
def credited_deposit(card_psp, card_method):
    """credited_deposit(player, amount) -> a card deposit captured by the PSP and credited."""
    from payments.psp.base import PspEvent
    from payments.services.psp_events import apply_event

    counter = {"n": 0}

    def make(player, amount):
        counter["n"] += 1
        n = counter["n"]
        event = PspEvent(
            event_id=f"fixture-{player.pk}-{n}",
            event_type="payment.captured",
            payment_kind="deposit",
            status="captured",
            psp_reference=f"pay_fixture_{player.pk}_{n}",
            player_ref=player.external_ref,
            amount=amount,
            currency="EUR",
            method="card",
            country=player.country,
            instrument="VISA •••• 4242",
        )
        payment, _, _ = apply_event(card_psp, event, None)
        return payment

    return make
