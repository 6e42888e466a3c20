"""The money of the demo casino: PSPs and methods per brand, thresholds, and for every demo
player a history of deposits and withdrawals with their status transitions, PSP callbacks,
balanced ledger postings and timeline events.

Planted stories (the players come from `players.demo.STORIES`):

- a deposit charged back a week later: Marek (the bonus ring) deposited 200 EUR with a card,
  withdrew 150 EUR the next day, and the card's owner disputed the deposit; the chargeback
  took the 50 EUR left and booked 150 EUR as a chargeback loss;
- a payout whose outcome the PSP never confirmed: Daniel's (the VIP's) 1,500 EUR withdrawal
  was sent to CardPay three days ago and CardPay never answered; the money is held;
- a withdrawal held for review because the payment method is new: Liam asked for 300 EUR to a
  bank account he never deposited from (the support ticket "where is my money" is about it);
- a manual adjustment waiting for a second approver: a 250 EUR goodwill credit for Daniel,
  requested by the Payments login.

Everything but the approval request is written with COPY, ids reserved from the sequences first,
postings computed in time order so every transaction sums to zero and every balance_after
chains (`check_ledger` passes). Deterministic (draws from `ctx.rng_for("payments")`, dates from
`ctx.now`) and idempotent (a second run finds the demo PSPs and writes nothing).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from backoffice import roles
from backoffice.bulkload import bulk_load
from backoffice.money import exponent_for, register_exponent
from players.models import Player

from .models import (
    Account,
    ApprovalThreshold,
    Currency,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentMethod,
    PaymentTransition,
    Psp,
    PspInboxEvent,
    RiskPolicy,
)
from .psp.base import PspEvent
from .psp.registry import get_adapter
from .services.ledger import fingerprint

DEMO_PREFIX = "demo-"


@dataclass(frozen=True)
class MethodSpec:
    kind: str
    currency: str
    country: str = ""
    deposits: bool = True
    withdrawals: bool = True
    min_major: str = "10"
    max_major: str = "5000"


@dataclass(frozen=True)
class PspSpec:
    brand: str
    code: str
    name: str
    adapter: str
    methods: tuple[MethodSpec, ...]


PSPS: tuple[PspSpec, ...] = (
    PspSpec("aurora", "cardpay-aurora", "CardPay", "cardpay", (MethodSpec("card", "EUR"),)),
    PspSpec("aurora", "openbank-aurora", "OpenBank", "openbank", (
        MethodSpec("open_banking", "EUR", "DE"), MethodSpec("open_banking", "EUR", "FI"),
        MethodSpec("open_banking", "EUR", "AT"),
    )),
    PspSpec("nordic", "cardpay-nordic", "CardPay", "cardpay",
            (MethodSpec("card", "SEK", min_major="100", max_major="50000"),)),
    PspSpec("nordic", "openbank-nordic", "OpenBank", "openbank",
            (MethodSpec("open_banking", "SEK", "SE", min_major="100", max_major="100000"),)),
    PspSpec("satoshi", "coinpay-satoshi", "CoinPay", "cardpay",
            (MethodSpec("crypto", "BTC", min_major="0.0001", max_major="2"),)),
)  # fmt: skip
DEMO_PSP_CODES = tuple(p.code for p in PSPS)

# Above these, corrections need a second approver.
THRESHOLDS = {"EUR": "200", "SEK": "2500", "BTC": "0.005", "USD": "200", "GBP": "200"}
# Withdrawal risk policy per currency, in major units: (auto-pay up to, daily auto-pay cap,
# one approver's limit, KYC 0 / 1 / 2 limits). Small clean withdrawals auto-pay in the live
# demo; larger or risky ones wait in the queue.
RISK_POLICIES = {
    "EUR": ("100", "5000", "10000", "50", "2000", "20000"),
    "SEK": ("1000", "50000", "100000", "500", "20000", "200000"),
    "BTC": ("0.002", "0.1", "0.5", "0.001", "0.05", "0.5"),
}

# Typical deposit amounts in major units.
AMOUNTS = {"EUR": ("10", "400"), "SEK": ("100", "4000"), "BTC": ("0.0005", "0.02")}
DECLINES = ["insufficient_funds", "do_not_honor", "expired_card", "3ds_failed"]
REJECTIONS = ["kyc_incomplete", "wagering_outstanding", "suspected_fraud", "bonus_abuse"]

CALLBACK_RETENTION = timedelta(days=60)

STORY_CHARGEBACK = "demo-story-ring-1"
STORY_HELD_PAYOUT = "demo-story-vip"
STORY_NEW_METHOD = "demo-story-where-is-my-money"


# --------------------------------------------------------------------------------------------
# Specs the generator produces; ids are given when everything is known
# --------------------------------------------------------------------------------------------


@dataclass
class PaySpec:
    """A deposit or withdrawal with its path, callbacks and postings (local index `n`)."""

    n: int
    kind: str
    player: Any
    psp: Psp
    method: PaymentMethod
    amount: int
    created_at: datetime
    reference: str
    psp_reference: str | None
    instrument: str
    fingerprint: str
    status: str = ""
    status_reason: str = ""
    status_changed_at: datetime | None = None
    psp_note: str = ""
    steps: list[tuple] = field(
        default_factory=list
    )  # (from, to, at, actor, actor_id, reason, note, event#)
    events: list[tuple] = field(default_factory=list)  # (local#, event_id, type, body, at)


@dataclass
class PostSpec:
    key: str
    kind: str
    brand_id: int
    player_id: int | None
    legs: list[tuple[tuple, int]]  # (account key, amount)
    at: datetime
    description: str
    payment: PaySpec | None = None
    reason_code: str = ""
    created_by_id: int | None = None
    reverses_key: str | None = None


class Generator:
    def __init__(self, ctx, psps: dict[str, Psp], methods: list[PaymentMethod]):
        self.ctx = ctx
        self.now: datetime = ctx.now
        self.rng = ctx.rng_for("payments")
        self.psps = psps
        self.methods = methods
        self.payments: list[PaySpec] = []
        self.postings: list[PostSpec] = []
        self.event_count = 0
        self.accounts: dict[tuple, datetime] = {}  # key -> first use
        self.references: set[str] = set()
        self.payments_staff = ctx.staff.get(roles.PAYMENTS)
        self.by_player: dict[int, list[PostSpec]] = {}

    # -- small helpers ----------------------------------------------------------------------

    def _ref(self, prefix: str) -> str:
        while True:
            ref = f"{prefix}-{self.rng.getrandbits(48):012X}"
            if ref not in self.references:
                self.references.add(ref)
                return ref

    def _amount(self, currency: str, low_high: tuple[str, str] | None = None) -> int:
        low, high = low_high or AMOUNTS.get(currency, ("10", "400"))
        exp = exponent_for(currency)
        lo, hi = int(Decimal(low).scaleb(exp)), int(Decimal(high).scaleb(exp))
        value = int(lo + (hi - lo) * self.rng.random() ** 2)  # small amounts more often
        step = 10**exp if exp <= 2 else 10 ** (exp - 4)
        return max(step, value - value % step)

    def _account(self, key: tuple, at: datetime) -> tuple:
        first = self.accounts.get(key)
        if first is None or at < first:
            self.accounts[key] = at
        return key

    def wallet(self, player, kind: str, at: datetime) -> tuple:
        return self._account(("p", player.pk, kind, player.currency), at)

    def house(self, brand_id: int, kind: str, currency: str, ref: str, at: datetime) -> tuple:
        return self._account(("h", brand_id, kind, ref, currency), at)

    def methods_for(self, player, *, deposit: bool) -> list[PaymentMethod]:
        return [
            m
            for m in self.methods
            if m.brand_id == player.brand_id
            and m.currency_id == player.currency
            and (not m.country or m.country == player.country)
            and (m.supports_deposits if deposit else m.supports_withdrawals)
        ]

    def instrument(self, player, method: PaymentMethod) -> tuple[str, str]:
        if method.kind == PaymentMethod.Kind.CARD:
            last4 = f"{self.rng.randint(0, 9999):04d}"
            return f"{self.rng.choice(['VISA', 'MC'])} •••• {last4}", f"fp_{player.pk}_{last4}"
        if method.kind == PaymentMethod.Kind.CRYPTO:
            tail = f"{self.rng.getrandbits(24):06x}"
            return f"bc1q…{tail}", f"wallet_{player.pk}_{tail}"
        tail = f"{self.rng.randint(1000, 9999)}"
        return f"{player.country}•• {tail}", f"acct_{player.pk}_{tail}"

    def _event(self, spec: PaySpec, status: str, at: datetime, reason: str = "") -> int | None:
        """A stored, applied PSP callback about `spec` reaching `status`; returns its local#.

        Raw callbacks are kept for CALLBACK_RETENTION (as an operator would keep them): older
        status changes keep their transition but no raw body."""
        if at < self.now - CALLBACK_RETENTION:
            return None
        self.event_count += 1
        number = self.event_count
        event = PspEvent(
            event_id=f"evt_demo_{number:08d}",
            event_type="",
            payment_kind=spec.kind,
            status=status,
            psp_reference=spec.psp_reference or "",
            merchant_reference=spec.reference,
            player_ref=spec.player.external_ref,
            amount=spec.amount,
            currency=spec.player.currency,
            method=spec.method.kind,
            country=spec.player.country,
            instrument=spec.instrument,
            instrument_fingerprint=spec.fingerprint,
            reason=reason,
        )
        adapter = get_adapter(spec.psp.adapter)
        body = adapter.encode(event, created=at.timestamp()).decode()
        envelope = adapter.envelope(body.encode())
        spec.events.append((number, event.event_id, envelope.event_type, body, at))
        return number

    def _step(self, spec: PaySpec, to: str, at: datetime, actor: str, *, actor_id=None,
              reason: str = "", note: str = "", event: int | None = None) -> None:  # fmt: skip
        spec.steps.append((spec.status, to, at, actor, actor_id, reason, note, event))
        spec.status = to
        spec.status_changed_at = at
        if reason:
            spec.status_reason = reason

    def _post(self, spec: PostSpec) -> None:
        self.postings.append(spec)
        if spec.player_id is not None:
            self.by_player.setdefault(spec.player_id, []).append(spec)

    # -- deposits ---------------------------------------------------------------------------

    def deposit(self, player, at: datetime, *, amount=None, method=None, outcome=None,
                instrument=None) -> PaySpec | None:  # fmt: skip
        methods = self.methods_for(player, deposit=True)
        if not methods:
            return None
        method = method or self.rng.choice(methods)
        psp = self.psps[method.psp_id]
        instrument_label, fp = instrument or self.instrument(player, method)
        spec = PaySpec(
            n=len(self.payments), kind="deposit", player=player, psp=psp, method=method,
            amount=amount or self._amount(player.currency), created_at=at,
            reference=self._ref("D"),
            psp_reference=self._ref("pay" if psp.adapter == "cardpay" else "OB"),
            instrument=instrument_label, fingerprint=fp,
        )  # fmt: skip
        self.payments.append(spec)
        self._step(spec, "initiated", at, "player")
        outcome = outcome or self.rng.choices(["credited", "failed", "expired"], [88, 8, 4])[0]
        t_auth, t_cap = at + timedelta(seconds=6), at + timedelta(seconds=25)
        if outcome == "failed":
            t_fail = at + timedelta(seconds=12)
            if t_fail >= self.now:
                return spec
            reason = self.rng.choice(DECLINES)
            self._step(spec, "failed", t_fail, "psp", reason=reason,
                       event=self._event(spec, "failed", t_fail, reason))  # fmt: skip
            return spec
        if outcome == "expired":
            t_exp = at + timedelta(minutes=30)
            if t_exp >= self.now:
                return spec
            self._step(spec, "expired", t_exp, "psp", event=self._event(spec, "expired", t_exp))
            return spec
        if t_auth >= self.now:
            return spec
        self._step(spec, "authorised", t_auth, "psp", event=self._event(spec, "authorised", t_auth))
        if t_cap >= self.now:
            return spec
        event = self._event(spec, "captured", t_cap)
        self._step(spec, "captured", t_cap, "psp", event=event)
        self._step(spec, "credited", t_cap, "system", event=event)
        clearing = self.house(player.brand_id, "psp_clearing", player.currency, psp.code, t_cap)
        self._post(PostSpec(
            f"payment:{{n{spec.n}}}:credited", "deposit", player.brand_id, player.pk,
            [(clearing, -spec.amount), (self.wallet(player, "cash", t_cap), spec.amount)],
            t_cap, f"Deposit {spec.reference}", payment=spec,
        ))  # fmt: skip
        return spec

    def money_back(self, spec: PaySpec, status: str, at: datetime, cash_now: int) -> int:
        """Refund, reversal or chargeback of a credited deposit; returns what left the cash."""
        player = spec.player
        clearing = self.house(player.brand_id, "psp_clearing", player.currency, spec.psp.code, at)
        taken = min(cash_now, spec.amount)
        legs = [(clearing, spec.amount)]
        if taken:
            legs.append((self.wallet(player, "cash", at), -taken))
        if spec.amount - taken:
            losses = self.house(player.brand_id, "chargeback_losses", player.currency, "", at)
            legs.append((losses, -(spec.amount - taken)))
        event = self._event(spec, status, at)
        self._step(spec, status, at, "psp", event=event)
        kind = {"refunded": "refund", "reversed": "reversal", "charged_back": "chargeback"}[status]
        self._post(PostSpec(
            f"payment:{{n{spec.n}}}:{status}", kind, player.brand_id, player.pk, legs, at,
            f"Deposit {spec.reference} {status.replace('_', ' ')}", payment=spec,
            reverses_key=f"payment:{{n{spec.n}}}:credited" if status == "reversed" else None,
        ))  # fmt: skip
        return taken

    # -- withdrawals ------------------------------------------------------------------------

    def withdrawal(self, player, at: datetime, amount: int, *, instrument=None, method=None,
                   outcome=None, known=True) -> PaySpec | None:  # fmt: skip
        methods = self.methods_for(player, deposit=False)
        if not methods:
            return None
        method = method or self.rng.choice(methods)
        psp = self.psps[method.psp_id]
        label, fp = instrument or self.instrument(player, method)
        spec = PaySpec(
            n=len(self.payments), kind="withdrawal", player=player, psp=psp, method=method,
            amount=amount, created_at=at, reference=self._ref("W"), psp_reference=None,
            instrument=label, fingerprint=fp,
        )  # fmt: skip
        self.payments.append(spec)
        self._step(spec, "requested", at, "player")
        brand, cur = player.brand_id, player.currency
        cash, locked = self.wallet(player, "cash", at), self.wallet(player, "locked", at)
        self._post(PostSpec(
            f"payment:{{n{spec.n}}}:requested", "withdrawal_lock", brand, player.pk,
            [(cash, -amount), (locked, amount)], at, f"Withdrawal {spec.reference} requested",
            payment=spec,
        ))  # fmt: skip
        if not known:
            self._step(spec, "in_review", at, "system", reason="new_payment_method",
                       note="First payout to this instrument")  # fmt: skip
        staff_id = getattr(self.payments_staff, "pk", None)
        outcome = (
            outcome
            or self.rng.choices(["paid", "rejected", "cancelled", "failed"], [86, 6, 5, 3])[0]
        )
        t_decide = at + timedelta(hours=self.rng.uniform(0.5, 20))
        if outcome == "pending" or t_decide >= self.now:
            return spec
        if outcome == "cancelled":
            self._step(spec, "cancelled", t_decide, "player", reason="cancelled")
            self._release(spec, t_decide, "cancelled")
            return spec
        if outcome == "rejected":
            reason = self.rng.choice(REJECTIONS)
            self._step(spec, "rejected", t_decide, "staff", actor_id=staff_id, reason=reason,
                       note="Demo decision")  # fmt: skip
            self._release(spec, t_decide, "rejected")
            return spec
        self._step(spec, "approved", t_decide, "staff", actor_id=staff_id)
        t_sent = t_decide + timedelta(seconds=40)
        if t_sent >= self.now:
            return spec
        spec.psp_reference = ("po_" if psp.adapter == "cardpay" else "OBP-") + spec.reference
        self._step(spec, "sent_to_psp", t_sent, "system")
        t_done = t_sent + timedelta(hours=self.rng.uniform(0.2, 30))
        if outcome == "held" or t_done >= self.now:
            return spec
        if outcome == "failed":
            reason = self.rng.choice(["account_closed", "AC04", "invalid_account"])
            self._step(spec, "failed", t_done, "psp", reason=reason,
                       event=self._event(spec, "failed", t_done, reason))  # fmt: skip
            self._release(spec, t_done, "failed")
            return spec
        self._step(spec, "paid", t_done, "psp", event=self._event(spec, "paid", t_done))
        clearing = self.house(brand, "psp_clearing", cur, psp.code, t_done)
        self._post(PostSpec(
            f"payment:{{n{spec.n}}}:paid", "withdrawal_payout", brand, player.pk,
            [(self.wallet(player, "locked", t_done), -amount), (clearing, amount)], t_done,
            f"Withdrawal {spec.reference} paid by {psp.name}", payment=spec,
        ))  # fmt: skip
        return spec

    def _release(self, spec: PaySpec, at: datetime, how: str) -> None:
        p = spec.player
        locked, cash = self.wallet(p, "locked", at), self.wallet(p, "cash", at)
        self._post(PostSpec(
            f"payment:{{n{spec.n}}}:released", "withdrawal_release", p.brand_id, p.pk,
            [(locked, -spec.amount), (cash, spec.amount)],
            at, f"Withdrawal {spec.reference} {how}: back to cash", payment=spec,
        ))  # fmt: skip

    # -- a player's history -----------------------------------------------------------------

    def player_history(self, player) -> None:
        rng = self.rng
        if rng.random() < 0.25:
            return  # registered, never deposited
        start = player.registered_at + timedelta(hours=1)
        span = (self.now - start).total_seconds()
        if span <= 3600:
            return
        count = min(12, 1 + int(rng.expovariate(0.45)))
        times = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
        cash = 0
        credited: list[tuple[PaySpec, datetime]] = []
        may_deposit = player.status == Player.Status.ACTIVE and not player.block_deposits
        for at in times:
            if may_deposit or rng.random() < 0.5:  # restricted players deposited before
                spec = self.deposit(player, at)
                if spec is not None and spec.status == "credited":
                    cash += spec.amount
                    credited.append((spec, at))
            if cash and rng.random() < 0.22:
                w_at = at + timedelta(hours=rng.uniform(2, 72))
                if w_at < self.now and not player.block_withdrawals:
                    amount = int(cash * rng.uniform(0.3, 0.9))
                    exp = exponent_for(player.currency)
                    amount -= amount % (10**exp if exp <= 2 else 10 ** (exp - 4))
                    if amount > 0:
                        known = credited[-1][0] if credited else None
                        inst = (known.instrument, known.fingerprint) if known else None
                        method = (
                            known.method if known and known.method.supports_withdrawals else None
                        )
                        spec = self.withdrawal(player, w_at, amount, instrument=inst, method=method)
                        if spec is not None:
                            # a release comes back later: not counted, so no later posting
                            # can spend money before it is back
                            cash -= amount
        for spec, at in credited:
            roll = rng.random()
            if roll < 0.015:
                status = "refunded"
            elif roll < 0.02:
                status = "charged_back"
            elif roll < 0.023:
                status = "reversed"
            else:
                continue
            if status == "charged_back" and spec.psp.adapter == "openbank":
                status = "reversed"  # bank payments have recalls, not card chargebacks
            back_at = at + timedelta(days=rng.uniform(3, 25))
            if back_at < self.now:
                self.money_back(spec, status, back_at, self._cash_floor(player, back_at))

    def _cash_floor(self, player, at: datetime) -> int:
        """The least the player's cash will be from `at` on, given the postings so far: what a
        refund or chargeback at `at` can take without a later posting going below zero."""
        key = ("p", player.pk, "cash", player.currency)
        running, floor = 0, None
        for post in sorted(self.by_player.get(player.pk, []), key=lambda p: p.at):
            if post.at > at and floor is None:
                floor = running
            running += sum(amount for k, amount in post.legs if k == key)
            if floor is not None:
                floor = min(floor, running)
        return running if floor is None else floor

    # -- planted stories --------------------------------------------------------------------

    def chargeback_story(self, player) -> None:
        card = next(m for m in self.methods_for(player, deposit=True) if m.kind == "card")
        major = 10 ** exponent_for(player.currency)
        at = self.now - timedelta(days=9, hours=4)
        spec = self.deposit(player, at, amount=200 * major, method=card, outcome="credited",
                            instrument=("VISA •••• 0119", f"fp_{player.pk}_stolen"))  # fmt: skip
        w = self.withdrawal(player, at + timedelta(hours=20), 150 * major,
                            instrument=(f"{player.country}•• 5512", f"acct_{player.pk}_5512"),
                            method=card, outcome="paid")  # fmt: skip
        assert w is not None and spec is not None
        back_at = self.now - timedelta(days=2, hours=1)
        self.money_back(spec, "charged_back", back_at, self._cash_floor(player, back_at))

    def held_payout_story(self, player) -> None:
        card = next(m for m in self.methods_for(player, deposit=True) if m.kind == "card")
        major = 10 ** exponent_for(player.currency)
        base = self.now - timedelta(days=40)
        inst = ("VISA •••• 7781", f"fp_{player.pk}_7781")
        for days, amount in ((0, 2500), (12, 1500), (25, 1000)):
            self.deposit(player, base + timedelta(days=days), amount=amount * major, method=card,
                         outcome="credited", instrument=inst)  # fmt: skip
        spec = self.withdrawal(player, self.now - timedelta(days=3, hours=20), 1500 * major,
                               instrument=inst, method=card, outcome="held")  # fmt: skip
        assert spec is not None and spec.status == "sent_to_psp"
        spec.psp_note = f"Outcome unknown: {spec.psp.name} did not answer: ReadTimeout."

    def new_method_story(self, player) -> None:
        card = next(m for m in self.methods_for(player, deposit=True) if m.kind == "card")
        major = 10 ** exponent_for(player.currency)
        inst = ("MC •••• 4410", f"fp_{player.pk}_4410")
        self.deposit(player, self.now - timedelta(days=20), amount=150 * major, method=card,
                     outcome="credited", instrument=inst)  # fmt: skip
        self.deposit(player, self.now - timedelta(days=6), amount=300 * major, method=card,
                     outcome="credited", instrument=inst)  # fmt: skip
        spec = self.withdrawal(
            player, self.now - timedelta(hours=5), 300 * major, method=card,
            instrument=("IE•• 7731 (new bank account)", f"acct_{player.pk}_7731"), known=False,
            outcome="pending",
        )  # fmt: skip
        assert spec is not None and spec.status == "in_review"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    count = 0
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_NOTNULL, lineterminator="\n")
        for row in rows:
            writer.writerow(row)
            count += 1
            if count % 20_000 == 0:
                copy.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
        copy.write(buffer.getvalue())
    return count


def _reserve(model, n: int) -> list[int]:
    if n <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, n],
        )
        return [row[0] for row in cursor.fetchall()]


def _configure(ctx) -> tuple[dict[int, Psp], list[PaymentMethod]]:
    """PSPs, methods and thresholds through the ORM (a few rows, with their history)."""
    rng = ctx.rng_for("payments-keys")
    for code in {m.currency for spec in PSPS for m in spec.methods} | set(THRESHOLDS):
        currency = Currency.objects.filter(pk=code).first()
        if currency is not None:
            register_exponent(currency.code, currency.exponent)
    for code, major in THRESHOLDS.items():
        if Currency.objects.filter(pk=code).exists():
            threshold = ApprovalThreshold.objects.filter(currency_id=code).first()
            if threshold is None:
                threshold = ApprovalThreshold(currency_id=code, amount=0)
            threshold.amount = int(Decimal(major).scaleb(exponent_for(code)))
            threshold._change_reason = "Demo casino"
            threshold.save()
    _risk_policies(ctx)
    psps: dict[int, Psp] = {}
    methods: list[PaymentMethod] = []
    for spec in PSPS:
        brand = ctx.brands[spec.brand]
        if spec.adapter == "openbank":
            keys = {"k1": f"demo-{spec.code}-{rng.getrandbits(96):024x}"}
        else:
            keys = {"current": f"whsec_demo_{spec.code}_{rng.getrandbits(96):024x}"}
        psp = Psp(brand=brand, code=spec.code, name=spec.name, adapter=spec.adapter,
                  signing_keys=keys, created_at=ctx.now - timedelta(days=1200))  # fmt: skip
        psp._change_reason = "Demo casino"
        psp.save()
        psps[psp.pk] = psp
        for m in spec.methods:
            exp = exponent_for(m.currency)
            method = PaymentMethod(
                psp=psp, brand=brand, kind=m.kind, country=m.country, currency_id=m.currency,
                supports_deposits=m.deposits, supports_withdrawals=m.withdrawals,
                min_amount=int(Decimal(m.min_major).scaleb(exp)),
                max_amount=int(Decimal(m.max_major).scaleb(exp)),
            )  # fmt: skip
            method._change_reason = "Demo casino"
            method.save()
            methods.append(method)
    # A method switched off with a reason, so the PSP page shows what that looks like.
    off = next(m for m in methods if m.kind == "open_banking" and m.country == "FI")
    off.is_enabled = False
    off.status_reason = "Bank outage at OP Financial: switched off until OpenBank confirms"
    off._change_reason = off.status_reason
    off.save()
    return psps, methods


def _risk_policies(ctx) -> None:
    """One withdrawal risk policy per demo brand and currency it pays out in."""
    currencies = {}
    for spec in PSPS:
        for m in spec.methods:
            if m.withdrawals:
                currencies.setdefault(spec.brand, set()).add(m.currency)
    for brand_code, codes in currencies.items():
        brand = ctx.brands[brand_code]
        for code in sorted(codes):
            if code not in RISK_POLICIES or not Currency.objects.filter(pk=code).exists():
                continue
            exp = exponent_for(code)
            auto, cap, approver, kyc0, kyc1, kyc2 = (
                int(Decimal(major).scaleb(exp)) for major in RISK_POLICIES[code]
            )
            policy = RiskPolicy.objects.filter(brand=brand, currency_id=code).first()
            if policy is None:
                policy = RiskPolicy(brand=brand, currency_id=code)
            policy.review_score, policy.manual_score = 30, 70
            policy.auto_pay_max_amount, policy.daily_auto_pay_cap = auto, cap
            policy.approver_limit = approver
            policy.kyc0_limit, policy.kyc1_limit, policy.kyc2_limit = kyc0, kyc1, kyc2
            policy._change_reason = "Demo casino"
            policy.save()


def seed(ctx) -> None:
    """Write the demo's payments (see the module docstring). Idempotent."""
    if Psp.objects.filter(code__in=DEMO_PSP_CODES).exists():
        ctx.log("  demo PSPs already there")
        return
    if not ctx.brands:
        ctx.log("  no demo brands: nothing to do")
        return
    psps, methods = _configure(ctx)
    players = list(
        Player.objects.filter(external_ref__startswith=DEMO_PREFIX)
        .only("id", "brand_id", "external_ref", "country", "currency", "status",
              "block_deposits", "block_withdrawals", "registered_at", "username")
        .order_by("id")
    )  # fmt: skip
    gen = Generator(ctx, psps, methods)
    stories = {
        STORY_CHARGEBACK: gen.chargeback_story,
        STORY_HELD_PAYOUT: gen.held_payout_story,
        STORY_NEW_METHOD: gen.new_method_story,
    }
    for player in players:
        planted = stories.get(player.external_ref)
        if planted is not None:
            planted(player)
        else:
            gen.player_history(player)
    counts = _write(gen)
    _request_adjustment(ctx, players)
    ctx.log(
        f"  {len(psps)} PSPs, {len(methods)} methods; {counts['payments']:,} payments, "
        f"{counts['transitions']:,} transitions, {counts['events']:,} PSP callbacks, "
        f"{counts['transactions']:,} ledger transactions ({counts['entries']:,} entries), "
        f"{counts['timeline']:,} timeline events"
    )


def _write(gen: Generator) -> dict[str, int]:
    account_keys = sorted(gen.accounts, key=lambda k: (gen.accounts[k], str(k)))
    account_ids = dict(zip(account_keys, _reserve(Account, len(account_keys)), strict=True))
    payment_ids = dict(
        zip((p.n for p in gen.payments), _reserve(Payment, len(gen.payments)), strict=True)
    )
    event_ids = dict(
        zip(range(1, gen.event_count + 1), _reserve(PspInboxEvent, gen.event_count), strict=True)
    )
    postings = sorted(gen.postings, key=lambda p: p.at)
    txn_ids = _reserve(LedgerTransaction, len(postings))

    def account_meta(key):
        if key[0] == "p":
            _, player_id, kind, currency = key
            return player_id, kind, "", currency
        _, _, kind, ref, currency = key
        return None, kind, ref, currency

    player_brand = {p.player.pk: p.player.brand_id for p in gen.payments}
    balances: dict[tuple, int] = dict.fromkeys(account_keys, 0)
    txn_rows, entry_rows, timeline_rows = [], [], []
    ids_by_key: dict[str, int] = {}
    label = {"p": "payments.deposit", "w": "payments.withdrawal"}
    kinds = dict(LedgerTransaction.Kind.choices)
    for txn_id, post in zip(txn_ids, postings, strict=True):
        payment_id = payment_ids[post.payment.n] if post.payment else None
        key = (
            post.key.replace(f"{{n{post.payment.n}}}", str(payment_id))
            if post.payment
            else post.key
        )
        ids_by_key[post.key] = txn_id
        legs = [(account_ids[k], amount) for k, amount in post.legs]
        object_type = ""
        if post.payment:
            object_type = label["p" if post.payment.kind == "deposit" else "w"]
        txn_rows.append((
            txn_id, key, post.kind, fingerprint(post.kind, legs), post.brand_id, post.player_id,
            ids_by_key.get(post.reverses_key) if post.reverses_key else None, object_type,
            str(payment_id) if payment_id else "", post.description, post.reason_code,
            post.created_by_id, None, post.at,
        ))  # fmt: skip
        parts = []
        for (k, amount), (account_id, _) in zip(post.legs, legs, strict=True):
            balances[k] += amount
            player_id, acc_kind, _, currency = account_meta(k)
            if player_id is not None and balances[k] < 0:
                raise RuntimeError(f"demo seed bug: {k} below zero at {post.at}")
            brand_id = player_brand.get(player_id, post.brand_id) if player_id else post.brand_id
            entry_rows.append(
                (txn_id, account_id, brand_id, player_id, currency, amount, balances[k], post.at)
            )
            if player_id is not None:
                sign = "+" if amount > 0 else "−"
                parts.append(f"{acc_kind} {sign}{_fmt(abs(amount), currency)}")
        if post.player_id is not None:
            timeline_rows.append((
                post.player_id, post.brand_id, post.at, "ledger", f"ledger.{post.kind}",
                f"{kinds[post.kind]}: {', '.join(parts)} — {post.description}"[:300],
                "payments.ledgertransaction", str(txn_id), "system", "",
                json.dumps({"transaction_id": txn_id}),
            ))  # fmt: skip

    first_use = gen.accounts
    account_rows = []
    for key in account_keys:
        player_id, kind, ref, currency = account_meta(key)
        brand_id = key[1] if key[0] == "h" else player_brand[player_id]
        account_rows.append(
            (
                account_ids[key],
                brand_id,
                player_id,
                kind,
                ref,
                currency,
                balances[key],
                first_use[key],
            )
        )

    payment_rows, transition_rows, inbox_rows = [], [], []
    for spec in gen.payments:
        pid = payment_ids[spec.n]
        p = spec.player
        payment_rows.append((
            pid, spec.kind, p.brand_id, p.pk, spec.psp.pk, spec.method.pk, spec.method.kind,
            p.country, p.currency, spec.amount, spec.reference, spec.psp_reference,
            spec.instrument, spec.fingerprint, spec.status, spec.status_reason,
            spec.status_changed_at, spec.created_at, spec.psp_note,
        ))  # fmt: skip
        for number, event_id, event_type, body, at in spec.events:
            inbox_rows.append((
                event_ids[number], spec.psp.pk, p.brand_id, event_id, event_type,
                spec.psp_reference or "", at, "{}", body, "applied", 1, at, "applied", pid,
            ))  # fmt: skip
        kind_label = "Deposit" if spec.kind == "deposit" else "Withdrawal"
        money = _fmt(spec.amount, p.currency)
        subject = "payments.deposit" if spec.kind == "deposit" else "payments.withdrawal"
        for frm, to, at, actor, actor_id, reason, note, event in spec.steps:
            transition_rows.append((
                pid, frm, to, at, actor, actor_id, reason, note,
                event_ids[event] if event else None,
            ))  # fmt: skip
            summary = f"{kind_label} of {money} via {spec.psp.name}: {to.replace('_', ' ')}"
            if reason:
                summary += f" ({reason.replace('_', ' ')})"
            actor_label = {"psp": spec.psp.name, "player": "player", "system": "system"}.get(
                actor, "payments"
            )
            timeline_rows.append((
                p.pk, p.brand_id, at, "payment", f"{spec.kind}.{to}", summary, subject, str(pid),
                actor_label, "", json.dumps({"payment_id": pid, "status": to}),
            ))  # fmt: skip

    from players.models import TimelineEvent

    loads = [
        (Account, ("id", "brand_id", "player_id", "kind", "ref", "currency_id", "balance",
                   "created_at"), account_rows),
        (Payment, ("id", "kind", "brand_id", "player_id", "psp_id", "method_id", "method_kind",
                   "country", "currency_id", "amount", "reference", "psp_reference",
                   "instrument", "instrument_fingerprint", "status", "status_reason",
                   "status_changed_at", "created_at", "psp_note"), payment_rows),
        (PspInboxEvent, ("id", "psp_id", "brand_id", "event_id", "event_type", "psp_reference",
                         "received_at", "headers", "body", "status", "attempts", "processed_at",
                         "result", "payment_id"), inbox_rows),
        (LedgerTransaction, ("id", "idempotency_key", "kind", "fingerprint", "brand_id",
                             "player_id", "reverses_id", "object_type", "object_id",
                             "description", "reason_code", "created_by_id", "approval_id",
                             "created_at"), txn_rows),
        (LedgerEntry, ("transaction_id", "account_id", "brand_id", "player_id", "currency_id",
                       "amount", "balance_after", "created_at"), entry_rows),
        (PaymentTransition, ("payment_id", "from_status", "to_status", "at", "actor_kind",
                             "actor_id", "reason_code", "note", "psp_event_id"),
         transition_rows),
        (TimelineEvent, ("player_id", "brand_id", "occurred_at", "kind", "action", "summary",
                         "object_type", "object_id", "actor_label", "visibility", "data"),
         timeline_rows),
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    tables = [model._meta.db_table for model, _, _ in loads]
    with bulk_load(tables):
        for model, columns, rows in loads:
            _copy(model._meta.db_table, columns, rows)
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
    return {
        "payments": len(payment_rows),
        "transitions": len(transition_rows),
        "events": len(inbox_rows),
        "transactions": len(txn_rows),
        "entries": len(entry_rows),
        "timeline": len(timeline_rows),
    }


def _fmt(minor: int, currency: str) -> str:
    from backoffice.money import format_money

    return format_money(minor, currency)


def _request_adjustment(ctx, players) -> None:
    """The adjustment waiting for a second approver (through the service: audit, history)."""
    from backoffice.models import ApprovalRequest

    from .services.corrections import do_request_adjustment

    vip = next((p for p in players if p.external_ref == STORY_HELD_PAYOUT), None)
    requester = ctx.staff.get(roles.PAYMENTS)
    if vip is None or requester is None:
        return
    vip = Player.objects.get(pk=vip.pk)
    major = 10 ** exponent_for(vip.currency)
    request = do_request_adjustment(
        vip,
        currency=vip.currency,
        balance="cash",
        direction="credit",
        amount=250 * major,
        reason_code="goodwill",
        note="Goodwill for the delayed 1,500 EUR payout (CardPay incident); agreed with the VIP "
        "manager on the phone.",
        acting_user=requester,
        idempotency_key="demo-vip-goodwill",
    )
    if isinstance(request, ApprovalRequest):
        ApprovalRequest.objects.filter(pk=request.pk).update(
            requested_at=ctx.now - timedelta(hours=3)
        )
