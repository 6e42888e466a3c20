"""Fixtures for the reconciliation tests: a card PSP and a bank PSP on brand A, payments made
in bulk with SQL (a 100,000-line report needs 100,000 payments), and report files."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from payments.models import Payment
from payments.reconciliation.report_writer import Plant, write_settlement_report
from tests.factories import PlayerFactory, PspFactory

DAY = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _payments_world(currencies):
    """Every test here has the seeded currencies."""


@pytest.fixture
def bank_psp(brand_a):
    return PspFactory(brand=brand_a, code="openbank-alpha", name="OpenBank", adapter="openbank")


@pytest.fixture
def player(brand_a):
    return PlayerFactory(brand=brand_a, currency="EUR", country="MT")


def bulk_payments(psp, player, n: int, *, at: datetime = DAY, prefix: str = "T") -> None:
    """n payments through `psp` on the day of `at`, in one INSERT: three deposits credited for
    every withdrawal paid, amounts 100.00 to 1,099.99 EUR, PSP references {prefix}-PSP-<i>."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO payments_payment (kind, brand_id, player_id, psp_id, method_kind,
                country, currency_id, amount, reference, psp_reference, instrument,
                instrument_fingerprint, status, status_reason, status_changed_at, created_at,
                psp_note)
            SELECT CASE WHEN i %% 4 = 0 THEN 'withdrawal' ELSE 'deposit' END,
                   %(brand)s, %(player)s, %(psp)s, 'card', 'MT', 'EUR',
                   10000 + (i * 7919) %% 100000,
                   %(prefix)s || '-' || i, %(prefix)s || '-PSP-' || i, '', '',
                   CASE WHEN i %% 4 = 0 THEN 'paid' ELSE 'credited' END, '',
                   %(at)s, %(at)s + make_interval(secs => i %% 80000), ''
            FROM generate_series(1, %(n)s) AS i
            """,
            {
                "brand": psp.brand_id,
                "player": player.pk,
                "psp": psp.pk,
                "n": n,
                "at": at.replace(hour=0, minute=0, second=0),
                "prefix": prefix,
            },
        )
        cursor.execute("ANALYZE payments_payment")


@pytest.fixture
def make_payments():
    return bulk_payments


def report_bytes(psp, *, plant: Plant | None = None, seed: int = 1, day=DAY):
    """(the report as bytes, what was planted) for `psp`'s payments of `day`."""
    out = io.StringIO(newline="")
    written = write_settlement_report(
        out, psp, start=day.date(), end=day.date(), plant=plant, seed=seed
    )
    return out.getvalue().encode(), written


@pytest.fixture
def make_report():
    return report_bytes


def statuses_of(psp) -> dict:
    return dict(Payment.objects.filter(psp=psp).values_list("reference", "status"))


__all__ = ["DAY", "bulk_payments", "report_bytes", "statuses_of", "timedelta"]
