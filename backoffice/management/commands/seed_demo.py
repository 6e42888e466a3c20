"""Fill the database with the demo casino: roles, brands, logins, then every app's stories."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import module_has_submodule

from backoffice import demo
from backoffice.staff_services import ensure_roles

DEFAULT_PLAYERS = 5000
DEFAULT_SEED = 2026


def app_seed_modules() -> list[tuple[str, object]]:
    """The `<app>.demo` modules that exist, in `demo.APP_SEEDS` order."""
    found = []
    for label in demo.APP_SEEDS:
        if not apps.is_installed(label):
            continue
        package = apps.get_app_config(label).module
        if not module_has_submodule(package, "demo"):
            continue
        module = import_module(f"{package.__name__}.demo")
        if not callable(getattr(module, "seed", None)):
            raise CommandError(f"{module.__name__} has no seed(ctx) function.")
        found.append((label, module))
    return found


class Command(BaseCommand):
    help = (
        "Create the demo casino: roles, three brands, one login per role and each app's demo "
        "data. Deterministic for a given --seed, and idempotent: a second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--players",
            type=int,
            default=DEFAULT_PLAYERS,
            help=f"How many players to create across the brands (default {DEFAULT_PLAYERS}).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"Random seed: the same seed gives the same casino (default {DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--now",
            help="Reference instant for every date (ISO 8601, UTC). Default: today 00:00 UTC.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off. The demo logins have a published password: "
            "never use this on a database real people sign in to.",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates logins with a published password, so it runs only with "
                "DEBUG on (the dev settings). Pass --force to seed anyway."
            )
        if options["players"] < 0:
            raise CommandError("--players cannot be negative.")
        now = self._reference_time(options["now"])
        seed = options["seed"]
        ctx = demo.DemoContext(
            rng=random.Random(seed),
            players=options["players"],
            now=now,
            stdout=self.stdout,
            seed=seed,
        )
        self.stdout.write(
            f"Seeding the demo casino: seed {seed}, {ctx.players:,} players, "
            f"reference time {now:%Y-%m-%d %H:%M} UTC"
        )
        started = time.monotonic()
        self._step("roles", lambda _ctx: ensure_roles(), ctx)
        self._step("brands and logins", demo.seed, ctx)
        for label, module in app_seed_modules():
            self._step(label, module.seed, ctx)
        self.stdout.write(
            self.style.SUCCESS(f"Demo casino ready in {time.monotonic() - started:.1f} s.")
        )

    def _step(self, name: str, func, ctx: demo.DemoContext) -> None:
        self.stdout.write(f"- {name}")
        started = time.monotonic()
        with transaction.atomic():
            func(ctx)
        self.stdout.write(f"  {name}: {time.monotonic() - started:.1f} s")

    @staticmethod
    def _reference_time(value: str | None) -> datetime:
        if not value:
            today = datetime.now(UTC).date()
            return datetime(today.year, today.month, today.day, tzinfo=UTC)
        parsed = parse_datetime(value)
        if parsed is None:
            raise CommandError(f"--now: {value!r} is not an ISO 8601 date and time.")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
