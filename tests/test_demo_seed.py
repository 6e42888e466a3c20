"""seed_demo: roles, brands and one login per role; idempotent; app seeds run in order."""

from __future__ import annotations

import io
import types

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from backoffice import demo, roles
from backoffice.management.commands import seed_demo
from backoffice.models import Brand, User
from backoffice.scoping import brand_ids_for

pytestmark = pytest.mark.django_db

SEED_ARGS = ["--players", "20", "--seed", "7", "--now", "2026-01-15T00:00:00Z", "--force"]


def run_seed(*extra: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *SEED_ARGS, *extra, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def test_seed_creates_roles_brands_and_one_login_per_role():
    run_seed()

    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)
    brands = {b.code: b for b in Brand.objects.all()}
    assert {code: (b.jurisdiction, b.default_currency) for code, b in brands.items()} == {
        "aurora": ("MT", "EUR"),
        "nordic": ("SE", "SEK"),
        "satoshi": ("CW", "BTC"),
    }
    for login in demo.DEMO_LOGINS:
        user = User.objects.get(username=login.username)
        assert user.check_password(demo.DEMO_PASSWORD)
        assert user.must_enrol_otp, "the demo offers the second-factor skip at first sign-in"
        assert user.is_superuser == login.superuser
        if login.role:
            assert list(user.groups.values_list("name", flat=True)) == [login.role]
    for role in roles.ROLES:
        assert User.objects.filter(groups__name=role).count() == 1, role


def test_logins_see_the_brands_their_role_needs():
    run_seed()
    ids = {b.code: b.pk for b in Brand.objects.all()}

    support = User.objects.get(username="support")
    assert brand_ids_for(support) == {ids["aurora"], ids["nordic"]}
    payments = User.objects.get(username="payments")
    assert brand_ids_for(payments) == set(ids.values())
    # Admin and Auditor cover every brand through their role; so does the superuser.
    for username in ("admin", "auditor", "superuser"):
        assert brand_ids_for(User.objects.get(username=username)) is None, username


def test_second_run_creates_and_changes_nothing():
    run_seed()
    before = row_counts()
    users_before = list(User.objects.order_by("pk").values())

    output = run_seed()

    assert row_counts() == before
    assert list(User.objects.order_by("pk").values()) == users_before
    assert "login support" not in output, "nothing is reported as created the second time"


def test_demo_password_meets_the_password_rules():
    from django.contrib.auth.password_validation import validate_password

    run_seed()
    for login in demo.DEMO_LOGINS:
        validate_password(demo.DEMO_PASSWORD, User.objects.get(username=login.username))
    assert len(demo.DEMO_PASSWORD) >= 12


def test_app_seeds_run_in_order_each_in_a_transaction_with_a_full_context(monkeypatch):
    calls = []

    def fake_module(label):
        def seed(ctx):
            calls.append((label, connection.in_atomic_block, ctx))

        return types.SimpleNamespace(__name__=f"{label}.demo", seed=seed)

    monkeypatch.setattr(
        seed_demo,
        "app_seed_modules",
        lambda: [(label, fake_module(label)) for label in demo.APP_SEEDS],
    )
    run_seed()

    assert [label for label, _, _ in calls] == [
        "players", "payments", "support", "compliance", "bonuses", "games", "reporting",
    ]  # fmt: skip
    assert all(in_atomic for _, in_atomic, _ in calls)
    ctx = calls[0][2]
    assert ctx.players == 20
    assert ctx.seed == 7
    assert ctx.now.isoformat() == "2026-01-15T00:00:00+00:00"
    assert set(ctx.brands) == {"aurora", "nordic", "satoshi"}
    assert set(ctx.staff) == set(roles.ROLES)
    assert ctx.superuser.username == "superuser"
    assert ctx.rng_for("players").random() == ctx.rng_for("players").random()
    assert ctx.rng_for("players").random() != ctx.rng_for("payments").random()


def test_existing_app_demo_modules_are_found_in_order():
    labels = [label for label, _ in seed_demo.app_seed_modules()]
    assert labels == [label for label in demo.APP_SEEDS if label in labels]
    for _label, module in seed_demo.app_seed_modules():
        assert callable(module.seed)
