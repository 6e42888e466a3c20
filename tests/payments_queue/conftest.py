"""Fixtures for the withdrawal queue: a card PSP and method on brand A, players with a history
(old account, a credited deposit with the card they withdraw to), funded wallets, a risk
policy, and Celery run inline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import (
    Deposit,
    PaymentKind,
    PaymentStatus,
    RiskPolicy,
)
from payments.services import ledger
from payments.services.payments import do_request_withdrawal, instrument_fingerprint
from tests.factories import PlayerFactory

CARD = "VISA •••• 4242"


@pytest.fixture(autouse=True)
def _payments_world(currencies, celery_inline):
    """Every test here has the seeded currencies and runs Celery tasks inline."""


@pytest.fixture
def policy(brand_a):
    """Auto-pay up to 500.00 EUR each, 1,000.00 EUR a day; approvers up to 5,000.00 EUR."""
    return RiskPolicy.objects.create(
        brand=brand_a,
        currency_id="EUR",
        review_score=30,
        manual_score=70,
        auto_pay_max_amount=50_000,
        daily_auto_pay_cap=100_000,
        approver_limit=500_000,
        kyc0_limit=0,
        kyc1_limit=20_000,
        kyc2_limit=200_000,
    )


def fund(player, amount: int, currency: str = "EUR") -> None:
    """Credit the player's cash straight from PSP clearing (a deposit's ledger effect)."""
    wallet = ledger.get_wallet(player, currency)
    clearing = ledger.get_house_account(
        player.brand_id, "psp_clearing", currency, ref="cardpay-alpha"
    )
    n = fund.counter = getattr(fund, "counter", 0) + 1
    ledger.do_post_transfer(
        idempotency_key=f"queue-test-fund:{player.pk}:{n}",
        kind="deposit",
        legs=[(clearing, -amount), (wallet["cash"], amount)],
        brand=player.brand_id,
        player=player,
    )


def seasoned_player(brand, card_method, *, deposit: int = 100_000, days: int = 90, **fields):
    """A player registered `days` ago, KYC 2, who deposited `deposit` with CARD 20 days ago
    (a credited deposit) and has it as cash."""
    now = timezone.now()
    fields.setdefault("kyc_level", 2)
    player = PlayerFactory(
        brand=brand,
        currency="EUR",
        country="MT",
        registered_at=now - timedelta(days=days),
        **fields,
    )
    at = now - timedelta(days=20)
    Deposit.objects.create(
        kind=PaymentKind.DEPOSIT,
        brand=brand,
        player=player,
        psp=card_method.psp,
        method=card_method,
        method_kind=card_method.kind,
        country="MT",
        currency_id="EUR",
        amount=deposit,
        reference=f"D-HIST{player.pk:06d}",
        psp_reference=f"pay_hist_{player.pk}",
        instrument=CARD,
        instrument_fingerprint=instrument_fingerprint(card_method.psp.code, CARD),
        status=PaymentStatus.CREDITED,
        status_changed_at=at,
        created_at=at,
    )
    fund(player, deposit)
    return player


@pytest.fixture
def make_player(brand_a, card_method):
    def make(**kwargs):
        return seasoned_player(brand_a, card_method, **kwargs)

    return make


@pytest.fixture
def withdraw(card_method):
    def do(player, amount: int, instrument: str = CARD):
        return do_request_withdrawal(
            player, method=card_method, amount=amount, instrument=instrument
        )

    return do
