"""The PSP simulator: plays the providers' side of the wire against a running back office.

`Simulator` builds realistic flows of signed callbacks (successes, declines, expiries, refunds,
reversals, chargebacks, failed and unconfirmed payouts), sends them through a `send` function
(HTTP in `manage.py psp_simulate`, the Django test client in the tests), shuffles some,
delivers some twice and holds some back to arrive late. Every delivery can be recorded as a
JSON line (`method`, `path`, `headers`, `body`) and replayed later.

Callbacks-only flows (deposits that start at the PSP, carrying the player's external
reference, and their refunds, reversals and chargebacks) depend on nothing but the callbacks,
so replaying a recording against a copy of the database from before the run, each delivery any
number of times and in any order, then `process_psp_inbox`, ends in the same balances and
payment states.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.urls import reverse

from backoffice.money import exponent_for

from .models import PaymentMethod, Psp
from .psp.base import PspEvent
from .psp.registry import get_adapter


@dataclass(frozen=True)
class Delivery:
    """One HTTP request as a PSP sends it."""

    method: str
    path: str
    headers: dict[str, str]
    body: str

    def as_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict) -> Delivery:
        return cls(data["method"], data["path"], dict(data["headers"]), data["body"])

    @property
    def psp_code(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def webhook_path(psp: Psp) -> str:
    return reverse("psp_webhook", kwargs={"psp_code": psp.code})


def sign_delivery(psp: Psp, event: PspEvent, *, now: float | None = None) -> Delivery:
    """The delivery `psp` would send for `event`, signed now."""
    adapter = get_adapter(psp.adapter)
    stamp = time.time() if now is None else now
    body = adapter.encode(event, created=stamp)
    path = webhook_path(psp)
    headers = {"Content-Type": "application/json"}
    headers.update(adapter.sign(psp, method="POST", path=path, body=body, now=stamp))
    return Delivery("POST", path, headers, body.decode())


def resign(delivery: Delivery, psp: Psp, *, now: float | None = None) -> Delivery:
    """The same body with a fresh signature (replays older than the tolerance window)."""
    adapter = get_adapter(psp.adapter)
    stamp = time.time() if now is None else now
    headers = {"Content-Type": delivery.headers.get("Content-Type", "application/json")}
    headers.update(
        adapter.sign(
            psp, method=delivery.method, path=delivery.path, body=delivery.body.encode(), now=stamp
        )
    )
    return Delivery(delivery.method, delivery.path, headers, delivery.body)


# Typical amounts in major units per currency; others use DEFAULT_RANGE.
AMOUNT_RANGES = {
    "JPY": (1_000, 50_000),
    "SEK": (100, 5_000),
    "NOK": (100, 5_000),
    "DKK": (100, 4_000),
    "BTC": (Decimal("0.0005"), Decimal("0.05")),
    "ETH": (Decimal("0.005"), Decimal("0.8")),
}
DEFAULT_RANGE = (10, 500)

DECLINE_CODES = ["insufficient_funds", "do_not_honor", "expired_card", "3ds_failed", "AM04"]


@dataclass
class Plan:
    """Deliveries to send now (in order) and later (after every flow's first part)."""

    now: list[Delivery] = field(default_factory=list)
    later: list[Delivery] = field(default_factory=list)
    actions: Counter = field(default_factory=Counter)


class Simulator:
    """Builds and sends flows. `send(delivery) -> HTTP status` does the transport."""

    def __init__(
        self,
        send: Callable[[Delivery], int],
        *,
        seed: int | None = None,
        concurrency: int = 4,
        record: Callable[[Delivery], None] | None = None,
    ):
        self.rng = random.Random(seed)
        self.run_id = secrets.token_hex(4)
        self.send_one = send
        self.concurrency = max(1, concurrency)
        self.record = record
        self.counter = 0
        self.results: Counter = Counter()
        self._lock = threading.Lock()

    # -- ids and amounts --------------------------------------------------------------------

    def _next(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.run_id}_{self.counter:06d}"

    def amount_for(self, currency: str) -> int:
        low, high = AMOUNT_RANGES.get(currency, DEFAULT_RANGE)
        exp = exponent_for(currency)
        lo, hi = int(Decimal(low).scaleb(exp)), int(Decimal(high).scaleb(exp))
        value = self.rng.randint(lo, hi)
        # round to something a person would type: whole major units for fiat
        step = 10**exp if exp <= 2 and value > 10 ** (exp + 1) else 1
        return max(step, value - value % step)

    # -- flows ------------------------------------------------------------------------------

    def callback_deposit(self, psp: Psp, method: PaymentMethod, player, plan: Plan) -> None:
        """A deposit that starts at the PSP: every event carries the player's reference."""
        reference = self._next("pay" if psp.adapter == "cardpay" else "OB")
        base = {
            "payment_kind": "deposit",
            "psp_reference": reference,
            "player_ref": player.external_ref,
            "amount": self.amount_for(method.currency_id),
            "currency": method.currency_id,
            "method": method.kind,
            "country": player.country,
        }
        if psp.adapter == "cardpay":
            last4 = f"{self.rng.randint(0, 9999):04d}"
            base["instrument"] = f"{self.rng.choice(['VISA', 'MC'])} •••• {last4}"
            base["instrument_fingerprint"] = f"fp_{player.external_ref}_{last4}"
        else:
            base["instrument"] = f"{player.country}•• {self.rng.randint(1000, 9999)}"
            base["instrument_fingerprint"] = f"acct_{player.external_ref}"
        outcome = self.rng.choices(["success", "declined", "expired"], [0.78, 0.15, 0.07])[0]
        statuses: list[str]
        if outcome == "success":
            statuses = ["authorised", "captured"]
        elif outcome == "declined":
            statuses = ["authorised", "failed"] if self.rng.random() < 0.5 else ["failed"]
        else:
            statuses = ["", "expired"]  # "" is the informational pending event
        events = [self._event(psp, base, s) for s in statuses]
        if len(events) > 1 and self.rng.random() < 0.15:
            events[0], events[1] = events[1], events[0]  # out of order
        plan.actions[f"deposit_{outcome}"] += 1
        self._schedule(plan, [sign_delivery(psp, e) for e in events])
        if outcome == "success":
            after = self._after_credit(psp)
            if after:
                plan.actions[after] += 1
                plan.later.append(sign_delivery(psp, self._event(psp, base, after)))

    def _after_credit(self, psp: Psp) -> str:
        roll = self.rng.random()
        if psp.adapter == "cardpay":
            if roll < 0.04:
                return "refunded"
            if roll < 0.06:
                return "reversed"
            if roll < 0.10:
                return "charged_back"
            return ""
        if roll < 0.04:
            return "refunded"
        if roll < 0.07:
            return "reversed"
        return ""

    def _event(self, psp: Psp, base: dict, status: str) -> PspEvent:
        """`status` "" is the informational pending event."""
        pending = not status and psp.adapter == "cardpay"
        return PspEvent(
            event_id=self._next("evt"),
            event_type="payment.pending" if pending else "",
            status=status,
            reason=self.rng.choice(DECLINE_CODES) if status == "failed" else "",
            **base,
        )

    def _schedule(self, plan: Plan, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            roll = self.rng.random()
            if roll < 0.08:
                plan.later.append(d)  # arrives late
            else:
                plan.now.append(d)
            if self.rng.random() < 0.10:
                plan.later.append(d)  # the PSP retries a delivery it thinks failed

    def payout_events(self, psp: Psp, withdrawal, plan: Plan) -> None:
        """Callbacks for a payout we sent: paid, failed, or not yet (answered on a later run)."""
        outcome = self.rng.choices(["paid", "failed", "later"], [0.86, 0.08, 0.06])[0]
        plan.actions[f"payout_{outcome}"] += 1
        if outcome == "later":
            return
        event = PspEvent(
            event_id=self._next("evt"),
            event_type="",
            payment_kind="withdrawal",
            status=outcome,
            psp_reference=withdrawal.psp_reference or self._next("po"),
            merchant_reference=withdrawal.reference,
            player_ref=withdrawal.player.external_ref,
            amount=withdrawal.amount,
            currency=withdrawal.currency_id,
            reason=self.rng.choice(DECLINE_CODES) if outcome == "failed" else "",
        )
        self._schedule(plan, [sign_delivery(psp, event)])

    def merchant_deposit_events(self, psp: Psp, deposit, plan: Plan) -> None:
        """Callbacks for a deposit our cashier started (they carry our reference)."""
        outcome = self.rng.choices(["success", "declined"], [0.85, 0.15])[0]
        plan.actions[f"cashier_deposit_{outcome}"] += 1
        statuses = ["authorised", "captured"] if outcome == "success" else ["failed"]
        base = {
            "payment_kind": "deposit",
            "psp_reference": self._next("pay" if psp.adapter == "cardpay" else "OB"),
            "merchant_reference": deposit.reference,
            "player_ref": deposit.player.external_ref,
            "amount": deposit.amount,
            "currency": deposit.currency_id,
            "method": deposit.method_kind,
            "country": deposit.country,
        }
        events = [self._event(psp, base, s) for s in statuses]
        self._schedule(plan, [sign_delivery(psp, e) for e in events])

    # -- sending ----------------------------------------------------------------------------

    def deliver(self, deliveries: Iterable[Delivery]) -> Counter:
        """Send deliveries with `concurrency` threads; count the answers by status code."""
        counts: Counter = Counter()

        def one(d: Delivery) -> int:
            status = self.send_one(d)
            if self.record is not None:
                with self._lock:
                    self.record(d)
            return status

        items = list(deliveries)
        if self.concurrency == 1:
            answers = [one(d) for d in items]
        else:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                answers = list(pool.map(one, items))
        counts.update(answers)
        self.results.update(answers)
        return counts

    def run_plan(self, plan: Plan) -> Counter:
        counts = self.deliver(plan.now)
        late = list(plan.later)
        self.rng.shuffle(late)
        counts.update(self.deliver(late))
        return counts


def callback_targets(psps: Iterable[Psp]) -> list[tuple[Psp, PaymentMethod, list]]:
    """For each enabled deposit method: the players it can serve (brand, currency, country)."""
    from players.models import Player

    targets = []
    for psp in psps:
        for method in psp.methods.filter(is_enabled=True, supports_deposits=True):
            players = Player.objects.filter(brand_id=psp.brand_id, currency=method.currency_id)
            if method.country:
                players = players.filter(country=method.country)
            refs = list(players.order_by("id").only("id", "external_ref", "country")[:5000])
            if refs:
                targets.append((psp, method, refs))
    return targets


def record_to_file(path: str) -> Callable[[Delivery], None]:
    handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed at exit by the command

    def write(d: Delivery) -> None:
        handle.write(json.dumps(d.as_record(), ensure_ascii=False) + "\n")
        handle.flush()

    write.handle = handle  # type: ignore[attr-defined]
    return write


def read_recording(path: str) -> list[Delivery]:
    with open(path, encoding="utf-8") as handle:
        return [Delivery.from_record(json.loads(line)) for line in handle if line.strip()]
