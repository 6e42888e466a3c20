"""`manage.py psp_simulate`: drive deposits and payouts through real signed HTTP callbacks.

    psp_simulate --base-url http://127.0.0.1:8000 [--count N] [--record FILE]
                 [--callbacks-only] [--seed S] [--concurrency C] [--every SECONDS]
    psp_simulate --base-url URL --replay FILE [--copies N] [--resign] [--seed S]

Without `--callbacks-only` the simulator also plays the players through the services (cashier
deposits, withdrawal requests) and the PSPs' answers about payouts the back office sent (paid
or failed). Deciding withdrawals stays with the payments team (or auto-pay), so the queue
stays alive. `--every` repeats a batch forever, for a living demo.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.exceptions import PaymentsError
from payments.models import Account, Payment, PaymentMethod, PaymentStatus, Psp
from payments.services.payments import do_initiate_deposit, do_request_withdrawal
from payments.simulator import (
    Plan,
    Simulator,
    callback_targets,
    read_recording,
    record_to_file,
    resign,
)
from players.models import Player


class Command(BaseCommand):
    help = "Send realistic, signed PSP callbacks to a running back office."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
        parser.add_argument("--count", type=int, default=20, help="Payment flows per batch.")
        parser.add_argument("--record", help="Append every delivery made to FILE (JSON lines).")
        parser.add_argument(
            "--callbacks-only",
            action="store_true",
            help="Only flows that arrive entirely through callbacks (replayable).",
        )
        parser.add_argument("--seed", type=int, default=None, help="Seed of the random mix.")
        parser.add_argument("--concurrency", type=int, default=4, help="Parallel senders.")
        parser.add_argument("--brand", help="Only this brand's PSPs (brand code).")
        parser.add_argument(
            "--every", type=float, default=None, help="Repeat a batch every SECONDS, forever."
        )
        parser.add_argument("--replay", help="Re-send the deliveries recorded in FILE.")
        parser.add_argument(
            "--copies", type=int, default=1, help="Replay: send each delivery 1..N times."
        )
        parser.add_argument(
            "--resign",
            action="store_true",
            help="Replay: fresh signatures (recordings older than the 300 s tolerance).",
        )

        parser.add_argument(
            "--settlement-report",
            metavar="FILE",
            help="After the run, write each PSP's settlement report of today's payments: FILE "
            "for one PSP, else FILE is a folder with one <psp_code>.csv per PSP.",
        )
        parser.add_argument(
            "--plant",
            type=int,
            default=0,
            help="Settlement report: plant N discrepancies of each class per PSP.",
        )

    def handle(self, *args, **opts):
        base_url = opts["base_url"].rstrip("/")
        local = threading.local()

        def send(delivery) -> int:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            try:
                response = session.post(
                    base_url + delivery.path,
                    data=delivery.body.encode(),
                    headers=delivery.headers,
                    timeout=15,
                )
            except requests.RequestException as exc:
                self.stderr.write(f"{delivery.path}: {type(exc).__name__}")
                return 0
            return response.status_code

        recorder = record_to_file(opts["record"]) if opts["record"] else None
        sim = Simulator(send, seed=opts["seed"], concurrency=opts["concurrency"], record=recorder)
        try:
            if opts["replay"]:
                self._replay(sim, opts)
                return
            while True:
                started = time.monotonic()
                plan = self._plan(sim, opts)
                answers = sim.run_plan(plan)
                took = time.monotonic() - started
                self.stdout.write(
                    f"{sum(answers.values())} deliveries in {took:.1f}s "
                    f"({dict(sorted(answers.items()))} by HTTP status); flows: "
                    f"{dict(sorted(plan.actions.items()))}"
                )
                if opts["every"] is None:
                    break
                time.sleep(opts["every"])
        finally:
            if recorder is not None:
                recorder.handle.close()
        if opts["settlement_report"]:
            self._write_reports(opts)

    def _write_reports(self, opts) -> None:
        """What each PSP would send us for today, optionally with planted discrepancies."""
        from payments.reconciliation.report_writer import Plant, write_settlement_report

        psps = self._psps(opts)
        target = Path(opts["settlement_report"])
        if len(psps) > 1 or target.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            paths = {psp.pk: target / f"{psp.code}.csv" for psp in psps}
        else:
            paths = {psps[0].pk: target}
        n = opts["plant"]
        plant = Plant(
            amount_mismatch=n, currency_mismatch=n, status_mismatch=n,
            missing_ours=n, missing_psp=n, duplicate=n,
        )  # fmt: skip
        today = timezone.now().date()
        for i, psp in enumerate(psps):
            try:
                with open(paths[psp.pk], "w", newline="", encoding="utf-8") as out:
                    written = write_settlement_report(
                        out, psp, start=today, end=today, plant=plant, seed=(opts["seed"] or 0) + i
                    )
            except ValueError as exc:  # too few payments to plant on
                raise CommandError(f"{psp.code}: {exc}")
            planted = {k: len(v) for k, v in written.planted.items() if v}
            self.stdout.write(
                f"Settlement report for {psp.code}: {paths[psp.pk]} ({written.lines} lines"
                + (f", planted {planted}" if planted else "")
                + ")"
            )

    # -- planning ---------------------------------------------------------------------------

    def _psps(self, opts):
        psps = Psp.objects.filter(is_enabled=True).select_related("brand").order_by("id")
        if opts["brand"]:
            psps = psps.filter(brand__code=opts["brand"])
        psps = list(psps)
        if not psps:
            raise CommandError("No enabled PSP to simulate (run seed_demo first).")
        return psps

    def _plan(self, sim: Simulator, opts) -> Plan:
        psps = self._psps(opts)
        targets = callback_targets(psps)
        if not targets:
            raise CommandError("No PSP method has players in its currency and country.")
        plan = Plan()
        for _ in range(opts["count"]):
            roll = sim.rng.random()
            if opts["callbacks_only"] or roll < 0.6:
                psp, method, players = sim.rng.choice(targets)
                sim.callback_deposit(psp, method, sim.rng.choice(players), plan)
            elif roll < 0.8:
                self._cashier_deposit(sim, targets, plan)
            else:
                self._withdrawal_request(sim, psps, plan)
        if not opts["callbacks_only"]:
            self._payout_outcomes(sim, psps, plan, limit=max(1, opts["count"] // 2))
        return plan

    def _cashier_deposit(self, sim: Simulator, targets, plan: Plan) -> None:
        """The player starts a deposit in our cashier; the PSP's callbacks follow."""
        psp, method, players = sim.rng.choice(targets)
        player = Player.objects.get(pk=sim.rng.choice(players).pk)
        try:
            deposit = do_initiate_deposit(
                player,
                method=method,
                amount=sim.amount_for(method.currency_id),
                instrument=f"VISA •••• {sim.rng.randint(0, 9999):04d}",
            )
        except PaymentsError:
            plan.actions["cashier_deposit_refused"] += 1
            return
        sim.merchant_deposit_events(psp, deposit, plan)

    def _withdrawal_request(self, sim: Simulator, psps, plan: Plan) -> None:
        """A player with cash asks for a withdrawal. Deciding it is the payments team's job
        (or auto-pay's): the simulator only plays the players and the PSPs."""
        psp = sim.rng.choice(psps)
        method = (
            PaymentMethod.objects.filter(psp=psp, is_enabled=True, supports_withdrawals=True)
            .select_related("psp")
            .first()
        )
        if method is None:
            return
        accounts = Account.objects.filter(
            kind=Account.Kind.CASH,
            brand_id=psp.brand_id,
            currency_id=method.currency_id,
            balance__gt=0,
            player__status__in=[Player.Status.ACTIVE, Player.Status.SELF_EXCLUDED],
            player__block_withdrawals=False,
        )
        if method.country:
            accounts = accounts.filter(player__country=method.country)
        rich = list(accounts.order_by("-balance").values_list("player_id", "balance")[:200])
        if not rich:
            return
        player_id, balance = sim.rng.choice(rich)
        player = Player.objects.get(pk=player_id)
        # mostly back to an instrument the player deposited with, sometimes a new one
        known = (
            Payment.objects.filter(player=player, kind="deposit", status="credited", psp=psp)
            .exclude(instrument="")
            .values_list("instrument", "instrument_fingerprint")
            .first()
        )
        if known is None or sim.rng.random() < 0.1:
            known = (f"{player.country}•• {sim.rng.randint(1000, 9999)}", "")
        try:
            do_request_withdrawal(
                player,
                method=method,
                amount=min(balance, sim.amount_for(method.currency_id)),
                instrument=known[0],
                fingerprint=known[1],
            )
            plan.actions["withdrawal_requested"] += 1
        except PaymentsError:
            plan.actions["withdrawal_refused"] += 1

    def _payout_outcomes(self, sim: Simulator, psps, plan: Plan, *, limit: int) -> None:
        """The PSPs answer for payouts they were sent (oldest first). A payout already marked
        "outcome unknown" stays unanswered: that is the story of the PSP that never confirmed."""
        sent = (
            Payment.objects.filter(
                kind="withdrawal", status=PaymentStatus.SENT_TO_PSP, psp__in=psps
            )
            .exclude(psp_note__startswith="Outcome unknown")
            .select_related("psp", "player")
            .order_by("status_changed_at")[:limit]
        )
        for withdrawal in sent:
            sim.payout_events(withdrawal.psp, withdrawal, plan)

    # -- replay -----------------------------------------------------------------------------

    def _replay(self, sim: Simulator, opts) -> None:
        deliveries = read_recording(opts["replay"])
        if opts["resign"]:
            psps = {p.code: p for p in Psp.objects.all()}
            deliveries = [resign(d, psps[d.psp_code]) for d in deliveries]
        copies = max(1, opts["copies"])
        stream = [d for d in deliveries for _ in range(sim.rng.randint(1, copies))]
        sim.rng.shuffle(stream)
        answers = sim.deliver(stream)
        self.stdout.write(
            f"Replayed {len(deliveries)} recorded deliveries as {len(stream)} sends: "
            f"{dict(sorted(answers.items()))} by HTTP status."
        )
