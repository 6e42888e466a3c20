"""`make bench SCALE=S|M|L`: measure the back office on the benchmark dataset and print one
table, each figure beside what a user would use instead, measured in the same run.

    python -m benchmarks.run --scale S [--runs 30] [--only players,audit]

Results are saved as JSON in benchmarks/results/ with the machine's description.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import dataset


def _register_admin() -> None:
    """The Django admin changelists we compare list pages with (before URLs load)."""
    from django.contrib import admin

    from backoffice.models import AuditEvent
    from players.models import Player
    from support.models import Ticket

    class PlayerAdmin(admin.ModelAdmin):
        list_per_page = 50  # the same page size as ours
        list_display = ("id", "username", "email", "brand", "status", "country", "currency")
        list_filter = ("brand", "status", "country", "kyc_level")
        search_fields = ("username", "email", "phone")

    class TicketAdmin(admin.ModelAdmin):
        list_per_page = 50  # the same page size as ours
        list_display = ("id", "subject", "player", "status", "priority", "created_at")
        list_filter = ("brand", "status", "priority", "category")

    class AuditAdmin(admin.ModelAdmin):
        list_per_page = 50  # the same page size as ours
        list_display = ("id", "occurred_at", "actor_label", "action", "object_type", "object_id")
        list_filter = ("action", "brand")

    for model, model_admin in (
        (Player, PlayerAdmin),
        (Ticket, TicketAdmin),
        (AuditEvent, AuditAdmin),
    ):
        if not admin.site.is_registered(model):
            admin.site.register(model, model_admin)
    try:
        from . import figures_payments

        figures_payments.register_admin(admin.site)
    except ImportError:
        pass


def client_for(username: str):
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backoffice.models import User

    user = User.objects.get(username=username)
    client = Client()
    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="bench", defaults={"confirmed": True}
    )
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Back-office benchmarks")
    parser.add_argument(
        "--scale", default=os.environ.get("SCALE", "S"), choices=sorted(dataset.SCALES)
    )
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 30)))
    parser.add_argument("--only", default="", help="comma-separated figure groups")
    args = parser.parse_args(argv)

    dataset.setup_django()
    _register_admin()
    dataset.ensure_database()
    if dataset.built_scale() != args.scale:
        print(f"Dataset for scale {args.scale} not built yet: building it first.")
        dataset.build(dataset.SCALES[args.scale])

    from . import figures
    from .harness import render_table, save

    groups = figures.groups()
    wanted = [g for g in args.only.split(",") if g] or list(groups)
    results = []
    started = time.perf_counter()
    for name in wanted:
        print(f"… {name}", file=sys.stderr, flush=True)
        results.extend(groups[name](args))
    print()
    print(
        f"Scale {args.scale}, {args.runs} runs per page figure, {time.perf_counter() - started:.0f} s"
    )
    print(render_table(results))
    missed = [f.name for f in results if f.met is False]
    if missed:
        print("\nTargets missed: " + "; ".join(missed))
    print(f"\nSaved {save(args.scale, results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
