"""Shared fixtures: brands, one staff member per role, and clients already past the second factor.

Tests run against the real PostgreSQL at DATABASE_URL and Redis at REDIS_URL.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm

from backoffice import roles
from backoffice.staff_services import ensure_roles
from tests.factories import BrandFactory, StaffFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def brand_a(db):
    return BrandFactory(
        code="alpha", name="Alpha Casino", jurisdiction="MT", default_currency="EUR"
    )


@pytest.fixture
def brand_b(db):
    return BrandFactory(code="beta", name="Beta Bets", jurisdiction="SE", default_currency="SEK")


@pytest.fixture
def role_groups(db):
    return {g.name: g for g in ensure_roles(reset=True)}


@pytest.fixture
def make_staff(db, role_groups, brand_a):
    """make_staff(role_name or None, brands=[...], **fields) -> a user with that role and brands.

    By default the user works with brand_a only.
    """

    def make(role: str | None = None, *, brands=None, **fields):
        user = StaffFactory(**fields)
        if role:
            user.groups.add(role_groups[role])
        for brand in [brand_a] if brands is None else brands:
            assign_perm("backoffice.access_brand", user, brand)
        return user

    return make


def verified_client(user, client: Client | None = None, **client_kwargs) -> Client:
    """A test client logged in as `user` with a confirmed TOTP device already verified."""
    client = client or Client(**client_kwargs)
    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="default", defaults={"confirmed": True}
    )
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def client_for():
    return verified_client


@pytest.fixture(params=roles.ROLES)
def any_role(request):
    return request.param


# -- payments: shared by the payments, withdrawal-queue, reconciliation and browser tests ----


def ensure_currencies() -> None:
    """The currencies migration 0003 adds (a transactional test's flush removes them)."""
    from importlib import import_module

    from payments.models import Currency

    migration = import_module("payments.migrations.0003_currencies")
    for code, name, exponent, crypto in migration.CURRENCIES:
        Currency.objects.get_or_create(
            code=code, defaults={"name": name, "exponent": exponent, "is_crypto": crypto}
        )


@pytest.fixture
def currencies(db):
    ensure_currencies()


@pytest.fixture
def celery_inline():
    """Tasks enqueued on commit run at once, in the enqueuing thread (no broker needed)."""
    from backoffice.celery import app as celery_app

    old = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = old


@pytest.fixture
def card_psp(brand_a):
    from tests.factories import PspFactory

    return PspFactory(brand=brand_a, code="cardpay-alpha", name="CardPay", adapter="cardpay")


@pytest.fixture
def card_method(card_psp):
    from payments.models import PaymentMethod
    from tests.factories import PaymentMethodFactory

    return PaymentMethodFactory(psp=card_psp, kind=PaymentMethod.Kind.CARD, currency_id="EUR")
