"""The demo casino: how `manage.py seed_demo` builds it, and the foundation's part of it.

Order of a seed run
-------------------
1. `ensure_roles()`: the seeded roles (see `backoffice/roles.py`).
2. `seed(ctx)` below: the three demo brands and one demo login per role, plus a superuser.
3. `seed(ctx)` of every app module `<app>.demo` that exists, in the order of `APP_SEEDS`
   (players, payments, support, compliance, bonuses, games, reporting). An app without a
   `demo.py` is skipped; an app whose `demo.py` fails to import stops the run.

Each step runs in its own transaction: an app's seed either lands whole or not at all.

Writing an app's `demo.py`
--------------------------
Define `seed(ctx: DemoContext) -> None`. It must be:

- **idempotent**: a second run creates nothing and changes nothing. Since your seed is one
  transaction, "do my rows exist already?" (e.g. `if Player.objects.exists(): return`) is enough.
- **deterministic**: draw every random choice from `ctx.rng` or `ctx.rng_for("name")`, and
  every date from `ctx.now`; never call `random.*`, `timezone.now()` or Faker without a seed.
- **fast at scale**: `ctx.players` may be 100,000 (the benchmarks ask for that): use
  `bulk_create(batch_size=...)` or COPY, never one `save()` per row.

The context
-----------
`DemoContext` fields:

- `rng` (`random.Random`): seeded with `--seed`, shared by every step in order. Prefer
  `ctx.rng_for("players")`, a generator of your own derived from the seed, so your data does not
  change when another app draws more or fewer numbers.
- `players` (`int`): how many players to create across the brands (`--players`).
- `brands` (`dict[str, Brand]`): the demo brands by code: `aurora` (Aurora Casino, MT, EUR),
  `nordic` (Nordic Spins, SE, SEK) and `satoshi` (Satoshi Slots, CW, BTC, crypto).
  `BRAND_SPECS[code]` adds the countries and languages each brand's players come from.
- `staff` (`dict[str, User]`): one demo login per role name (`roles.SUPPORT`, ...); use them
  as `acting_user` of the services your seed calls, so the demo's history names real people.
- `superuser` (`User`): the `superuser` login, for actions no role may take.
- `now` (`datetime`, UTC): the fixed reference instant of the run: midnight UTC of the day the
  seed runs, or `--now`. Date everything relative to it ("3 days before ctx.now").
- `seed` (`int`): the seed itself.
- `stdout`: where to report progress; `ctx.log("...")` writes one line to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from . import roles
from .audit import record_event
from .models import Brand
from .scoping import BRAND_PERMISSION

# The apps whose `<app>.demo.seed(ctx)` runs after the foundation's, in this order.
APP_SEEDS = ["players", "payments", "support", "compliance", "bonuses", "games", "reporting"]

# Every demo login has this password; it satisfies the project's password validators.
DEMO_PASSWORD = "demo-casino-2026"

SEED_ACTOR = "seed_demo"


@dataclass(frozen=True)
class BrandSpec:
    """A demo brand and the market its players come from."""

    code: str
    name: str
    jurisdiction: str
    currency: str
    countries: tuple[str, ...]
    languages: tuple[str, ...]
    crypto: bool = False


BRAND_SPECS: dict[str, BrandSpec] = {
    spec.code: spec
    for spec in (
        BrandSpec("aurora", "Aurora Casino", "MT", "EUR", ("MT", "DE", "IE", "FI", "AT"),
                  ("en", "de", "fi")),
        BrandSpec("nordic", "Nordic Spins", "SE", "SEK", ("SE",), ("sv", "en")),
        BrandSpec("satoshi", "Satoshi Slots", "CW", "BTC", ("CA", "BR", "JP", "NZ", "MX"),
                  ("en", "pt", "ja", "es"), crypto=True),
    )
}  # fmt: skip

ALL_BRANDS = tuple(BRAND_SPECS)
FIAT_BRANDS = tuple(code for code, spec in BRAND_SPECS.items() if not spec.crypto)


@dataclass(frozen=True)
class DemoLogin:
    """One demo member of staff. Admin and Auditor cover every brand through their role."""

    username: str
    role: str | None
    first_name: str
    last_name: str
    brands: tuple[str, ...] = ()
    superuser: bool = False


DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("support", roles.SUPPORT, "Sofia", "Berg", FIAT_BRANDS),
    DemoLogin("payments", roles.PAYMENTS, "Paul", "Mercer", ALL_BRANDS),
    DemoLogin("risk", roles.RISK, "Rita", "Okafor", ALL_BRANDS),
    DemoLogin("compliance", roles.COMPLIANCE, "Carla", "Vella", ALL_BRANDS),
    DemoLogin("bonuses", roles.BONUS_MANAGER, "Ben", "Hartley", FIAT_BRANDS),
    DemoLogin("gameops", roles.GAME_OPERATIONS, "Gina", "Novak", ALL_BRANDS),
    DemoLogin("admin", roles.ADMIN, "Adam", "Price"),
    DemoLogin("auditor", roles.AUDITOR, "Alma", "Reyes"),
    DemoLogin("superuser", None, "Sam", "Root", superuser=True),
)


@dataclass
class DemoContext:
    """What every app's `seed(ctx)` receives; see the module docstring."""

    rng: random.Random
    players: int
    now: datetime
    stdout: TextIO
    seed: int = 0
    brands: dict[str, Brand] = field(default_factory=dict)
    staff: dict[str, object] = field(default_factory=dict)
    superuser: object | None = None

    def rng_for(self, name: str) -> random.Random:
        """A generator of its own for `name`, derived from the run's seed only."""
        return random.Random(f"{self.seed}:{name}")

    def log(self, message: str) -> None:
        self.stdout.write(f"{message}\n")


def seed(ctx: DemoContext) -> None:
    """Create the demo brands and logins that do not exist yet, and fill `ctx` with them."""
    for spec in BRAND_SPECS.values():
        ctx.brands[spec.code] = _ensure_brand(spec, ctx)
    password_hash = None
    for login in DEMO_LOGINS:
        if password_hash is None and not _login_exists(login):
            # Hashing is slow on purpose; every demo login has the same password, so once will do.
            password_hash = make_password(DEMO_PASSWORD)
        user = _ensure_login(login, ctx, password_hash)
        if login.superuser:
            ctx.superuser = user
        else:
            ctx.staff[login.role] = user


def _ensure_brand(spec: BrandSpec, ctx: DemoContext) -> Brand:
    brand = Brand.objects.filter(code=spec.code).first()
    if brand is not None:
        return brand
    brand = Brand(
        code=spec.code,
        name=spec.name,
        jurisdiction=spec.jurisdiction,
        default_currency=spec.currency,
    )
    brand._change_reason = "Demo casino"
    brand.save()
    record_event(
        "brand.created",
        actor_label=SEED_ACTOR,
        subject=brand,
        summary=f"Demo brand {spec.name} ({spec.jurisdiction}, {spec.currency})",
    )
    ctx.log(f"  brand {spec.name} ({spec.jurisdiction}, {spec.currency})")
    return brand


def _login_exists(login: DemoLogin) -> bool:
    return get_user_model().objects.filter(username=login.username).exists()


def _ensure_login(login: DemoLogin, ctx: DemoContext, password_hash: str | None):
    User = get_user_model()
    user = User.objects.filter(username=login.username).first()
    if user is not None:
        return user  # kept as the admins left it: a second run changes nothing
    user = User(
        username=login.username,
        first_name=login.first_name,
        last_name=login.last_name,
        email=f"{login.username}@demo-casino.test",
        is_superuser=login.superuser,
        is_staff=login.superuser,
        must_enrol_otp=True,  # the login page offers the skip: OTP is optional in the demo
    )
    user.password = password_hash
    user._change_reason = "Demo login"
    user.save()
    if login.role:
        user.groups.add(Group.objects.get(name=login.role))
    for code in login.brands:
        assign_perm(BRAND_PERMISSION, user, ctx.brands[code])
    record_event(
        "staff.created",
        actor_label=SEED_ACTOR,
        subject=user,
        summary=f"Demo login {login.username} ({login.role or 'superuser'})",
        after={"role": login.role, "brands": list(login.brands), "superuser": login.superuser},
    )
    ctx.log(f"  login {login.username} ({login.role or 'superuser'})")
    return user
