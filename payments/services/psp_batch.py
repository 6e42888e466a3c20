"""Applying PSP inbox events in batches, set-based: what keeps a worker ahead of the PSPs.

`apply_batch` takes rows already claimed (`FOR UPDATE SKIP LOCKED`, in one transaction) and
applies them with a fixed number of statements per batch instead of ~16 per event: the
payments they name are found and locked in one query (in id order), deposits started at the
PSP are created together, each payment's events are planned in memory in inbox order with the
same rules as one event at a time (`plan_event`, `deposit_path`), and then the payments, their
history, transitions, ledger postings (`do_post_transfers_batch`), timeline events and the
inbox rows are written with one bulk statement each.

What the set-based path does not take is applied row by row as before (`_apply_row`, each in
its own savepoint), with all the other events of the same payment: withdrawals, refunds,
reversals and chargebacks (their postings depend on balances), a deposit for a player who may
not deposit (recorded as refused), anything the state machine would refuse. If the set-based
part fails as a whole (a concurrent worker created the same deposit, say), its savepoint is
rolled back and every row of the batch goes row by row. The result is the same rows, payments,
postings and history as applying the events one by one in inbox order.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from backoffice.money import format_money
from players.models import Player
from players.services import restriction_reason

from ..exceptions import EventNotApplicable
from ..models import (
    Account,
    LedgerTransaction,
    Payment,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    PaymentTransition,
    Psp,
    PspInboxEvent,
)
from ..psp.base import PspEvent
from ..psp.registry import get_adapter
from . import ledger
from .payments import _actor_label, _record_instrument, instrument_fingerprint, new_reference
from .psp_events import (
    _apply_row,
    _check_creatable,
    _deposit_inputs,
    _no_change,
    plan_event,
)

logger = logging.getLogger(__name__)

S = PaymentStatus
Actor = PaymentTransition.Actor
Status = PspInboxEvent.Status

# Deposit statuses the set-based path books itself (only "credited" moves money, one fixed
# posting); any other status sends the payment's events row by row.
FAST_STATUSES = frozenset({S.AUTHORISED, S.CAPTURED, S.CREDITED, S.FAILED, S.EXPIRED})
WALLET_KINDS = (Account.Kind.CASH, Account.Kind.BONUS, Account.Kind.LOCKED)


class _RowByRow(Exception):
    """This payment's events go through the one-at-a-time path."""


@dataclass
class _Outcome:
    row: PspInboxEvent
    status: str
    message: str
    payment: Payment | None


@dataclass
class _Group:
    """The events of one payment (found, or to be created from the first of them)."""

    rows: list[tuple[PspInboxEvent, PspEvent]] = field(default_factory=list)
    payment: Payment | None = None
    created: bool = False
    outcomes: list[_Outcome] = field(default_factory=list)
    # the payment's versions for its history ("+" or "~", fields, reason), its transitions
    # (column values; the payment's id is added once it has one), its timeline calls
    history: list[tuple[str, dict, str]] = field(default_factory=list)
    transitions: list[dict] = field(default_factory=list)
    timeline: list[tuple[list[tuple[str, str]], str]] = field(default_factory=list)
    instrument: bool = False


def apply_batch(rows: list[PspInboxEvent]) -> list[str]:
    """Apply claimed inbox rows (inside the caller's transaction); returns their new statuses."""
    psps = Psp.objects.in_bulk({r.psp_id for r in rows})
    parsed, one_by_one = [], []
    for row in rows:
        row.psp = psps[row.psp_id]
        try:
            parsed.append((row, get_adapter(row.psp.adapter).parse(row.body.encode())))
        except Exception:  # the row-by-row path records why
            one_by_one.append(row)
    outcomes: list[_Outcome] = []
    if parsed:
        try:
            with transaction.atomic():
                outcomes, more = _Batch(parsed, psps).run()
        except Exception:
            logger.exception("A batch of %s PSP events failed; applying them one by one", len(rows))
            outcomes, more = [], [row for row, _ in parsed]
        one_by_one += more
    if outcomes:
        _mark(outcomes)
    statuses = [o.status for o in outcomes]
    for row in sorted(one_by_one, key=lambda r: r.pk):
        statuses.append(_apply_row(row))
    return statuses


def _mark(outcomes: list[_Outcome]) -> None:
    """Every row's outcome in one UPDATE (the ORM's bulk_update builds a CASE per column and
    row, which costs more than applying the events)."""
    now = timezone.now()
    ids, statuses, results, payments = [], [], [], []
    for o in outcomes:
        o.row.status = o.status
        o.row.result = o.message[:500]
        o.row.attempts += 1
        o.row.processed_at = now
        if o.payment is not None and o.payment.pk:
            o.row.payment_id = o.payment.pk
        ids.append(o.row.pk)
        statuses.append(str(o.row.status))
        results.append(o.row.result)
        payments.append(o.row.payment_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {PspInboxEvent._meta.db_table} AS e SET status = v.status, "
            f"result = v.result, attempts = e.attempts + 1, processed_at = %s, "
            f"payment_id = v.payment_id "
            f"FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[]) "
            f"AS v(id, status, result, payment_id) WHERE e.id = v.id",
            [now, ids, statuses, results, payments],
        )


class _Batch:
    def __init__(self, parsed: list[tuple[PspInboxEvent, PspEvent]], psps: dict[int, Psp]):
        self.parsed = parsed
        self.psps = psps
        self.now = timezone.now()

    # -- reading ------------------------------------------------------------------------------

    def run(self) -> tuple[list[_Outcome], list[PspInboxEvent]]:
        groups = self._group()
        self._load_for_creation(groups)
        fast, slow = [], []
        for group in groups:
            try:
                self._plan(group)
                fast.append(group)
            except _RowByRow:
                slow += [row for row, _ in group.rows]
        self._write(fast)
        return [o for g in fast for o in g.outcomes], slow

    def _group(self) -> list[_Group]:
        """Lock every payment the batch names (one query, id order) and group the events by
        payment, in inbox order."""
        refs, psp_refs = set(), set()
        for _row, event in self.parsed:
            if event.merchant_reference:
                refs.add(event.merchant_reference)
            if event.psp_reference:
                psp_refs.add(event.psp_reference)
        by_ref, by_psp_ref = {}, {}
        if refs or psp_refs:
            found = (
                Payment.objects.select_for_update(of=("self",))
                .select_related("player")
                .filter(psp_id__in=self.psps)
                .filter(Q(reference__in=refs) | Q(psp_reference__in=psp_refs))
                .order_by("id")
            )
            for p in found:
                p.psp = self.psps[p.psp_id]
                by_ref[(p.psp_id, p.kind, p.reference)] = p
                if p.psp_reference:
                    by_psp_ref[(p.psp_id, p.kind, p.psp_reference)] = p
        groups: dict[tuple, _Group] = {}
        for row, event in self.parsed:
            kind = event.payment_kind
            payment = None
            if event.merchant_reference:
                payment = by_ref.get((row.psp_id, kind, event.merchant_reference))
            if payment is None and event.psp_reference:
                payment = by_psp_ref.get((row.psp_id, kind, event.psp_reference))
            if payment is not None:
                key = ("payment", payment.pk)
            elif kind == PaymentKind.DEPOSIT and event.psp_reference:
                key = ("new", row.psp_id, event.psp_reference)
            else:
                key = ("row", row.pk)
            group = groups.setdefault(key, _Group(payment=payment))
            group.rows.append((row, event))
        return list(groups.values())

    def _load_for_creation(self, groups: list[_Group]) -> None:
        """Players, their current restrictions (FOR SHARE) and methods for new deposits."""
        wanted = {
            (row.psp.brand_id, event.player_ref)
            for g in groups
            if g.payment is None
            for row, event in g.rows
            if event.player_ref
        }
        self.players: dict[tuple[int, str], Player] = {}
        self.restricted: set[int] = set()
        self.methods: dict[int, list[PaymentMethod]] = defaultdict(list)
        if not wanted:
            return
        brands = {b for b, _ in wanted}
        for player in Player.objects.filter(
            brand_id__in=brands, external_ref__in={r for _, r in wanted}
        ):
            self.players[(player.brand_id, player.external_ref)] = player
        if self.players:
            # As `players.services.assert_may_deposit` reads them: committed, FOR SHARE.
            cols = ["id", "brand_id", "status", *Player.RESTRICTIONS]
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {', '.join(cols)} FROM {Player._meta.db_table} "
                    f"WHERE id = ANY(%s) ORDER BY id FOR SHARE",
                    [sorted(p.pk for p in self.players.values())],
                )
                for values in cursor.fetchall():
                    current = Player(**dict(zip(cols, values, strict=True)))
                    if restriction_reason(current, "deposit") is not None:
                        self.restricted.add(current.pk)
        for method in PaymentMethod.objects.filter(psp_id__in=self.psps):
            method.psp = self.psps[method.psp_id]
            self.methods[method.psp_id].append(method)

    # -- planning: in memory, the same rules as one event at a time ---------------------------

    def _plan(self, group: _Group) -> None:
        payment = group.payment
        for row, event in group.rows:
            if event.payment_kind != PaymentKind.DEPOSIT:
                raise _RowByRow
            try:
                if payment is None:
                    _check_creatable(row.psp, event)
                    payment = self._new_deposit(group, row, event)
                note = (payment.psp_reference, payment.psp_note)
                steps = plan_event(payment, event)
            except EventNotApplicable as exc:
                group.outcomes.append(_Outcome(row, Status.IGNORED, str(exc), exc.payment))
                continue
            if not steps:
                payment.psp_reference, payment.psp_note = note
                group.outcomes.append(
                    _Outcome(row, Status.IGNORED, _no_change(payment, event), payment)
                )
                continue
            status = payment.status
            for step in steps:
                allowed = payment.transitions_map.get(status, frozenset())
                if step.to_status not in FAST_STATUSES or step.to_status not in allowed:
                    raise _RowByRow
                group.transitions.append(
                    {
                        "from_status": status,
                        "to_status": step.to_status,
                        "at": self.now,
                        "actor_kind": step.actor_kind,
                        "reason_code": step.reason_code,
                        "note": step.note[:300],
                        "psp_event_id": row.pk,
                    }
                )
                status = step.to_status
            payment.status = status
            payment.status_changed_at = self.now
            reasons = [s.reason_code for s in steps if s.reason_code]
            if reasons:
                payment.status_reason = reasons[-1]
            reason = "; ".join(s.note or s.reason_code for s in steps if s.note or s.reason_code)
            group.history.append(("~", _version(payment), reason))
            group.timeline.append(
                (
                    [(s.to_status, s.reason_code) for s in steps],
                    _actor_label(steps[-1].actor_kind, payment),
                )
            )
            group.outcomes.append(
                _Outcome(row, Status.APPLIED, " → ".join(s.to_status for s in steps), payment)
            )
        group.payment = payment

    def _new_deposit(self, group: _Group, row: PspInboxEvent, event: PspEvent) -> Payment:
        psp = row.psp
        player = self.players.get((psp.brand_id, event.player_ref))
        methods = [
            m
            for m in self.methods.get(psp.pk, ())
            if m.kind == event.method and m.currency_id == event.currency
        ]
        method = _deposit_inputs(psp, event, player, methods)
        if player.pk in self.restricted:
            raise _RowByRow  # recorded as a refused deposit, with the players app's words
        payment = Payment(
            kind=PaymentKind.DEPOSIT,
            brand_id=player.brand_id,
            player=player,
            psp=psp,
            method=method,
            method_kind=method.kind,
            country=player.country,
            currency_id=method.currency_id,
            amount=event.amount,
            reference=new_reference(PaymentKind.DEPOSIT),
            psp_reference=event.psp_reference or None,
            instrument=event.instrument[:64],
            instrument_fingerprint=event.instrument_fingerprint
            or instrument_fingerprint(psp.code, event.instrument),
            status=S.INITIATED,
            status_changed_at=self.now,
            created_at=self.now,
        )
        group.created = True
        group.instrument = bool(payment.instrument)
        group.history.append(("+", _version(payment), ""))
        group.transitions.append(
            {
                "from_status": "",
                "to_status": S.INITIATED,
                "at": self.now,
                "actor_kind": Actor.PSP,
                "psp_event_id": row.pk,
            }
        )
        group.timeline.append(([(S.INITIATED, "")], psp.name))
        return payment

    # -- writing: one statement per table ----------------------------------------------------

    def _write(self, groups: list[_Group]) -> None:
        new = [g.payment for g in groups if g.created]
        if new:
            Payment.objects.bulk_create(new)
        changed = [
            g.payment for g in groups if not g.created and any(t == "~" for t, _, _ in g.history)
        ]
        if changed:
            _update_payments(changed)
        versions = [
            {
                **values,
                "id": g.payment.pk,
                "history_date": self.now,
                "history_type": history_type,
                # as simple-history records them: no reason on creation, advance's text after
                "history_change_reason": reason if history_type == "~" else None,
                "history_user_id": None,
            }
            for g in groups
            for history_type, values, reason in g.history
        ]
        if versions:
            insert_rows(Payment.history.model, versions)
        transitions = [{**t, "payment_id": g.payment.pk} for g in groups for t in g.transitions]
        if transitions:
            insert_rows(PaymentTransition, transitions)
        self._post(groups)
        self._timeline(groups)
        for g in groups:
            if g.instrument:
                _record_instrument(g.payment)

    def _post(self, groups: list[_Group]) -> None:
        """The ledger side: "credited" is the only status here that moves money."""
        credited = [
            g.payment for g in groups if any(t["to_status"] == S.CREDITED for t in g.transitions)
        ]
        if not credited:
            return
        wallets = self._cash_accounts({(p.player, p.currency_id) for p in credited})
        clearing: dict[tuple, Account] = {}
        transfers = []
        for p in credited:
            key = (p.brand_id, p.currency_id, p.psp.code)
            if key not in clearing:
                clearing[key] = ledger.get_house_account(
                    p.brand_id, Account.Kind.PSP_CLEARING, p.currency_id, ref=p.psp.code
                )
            transfers.append(
                ledger.Transfer(
                    idempotency_key=f"payment:{p.pk}:credited",
                    kind=LedgerTransaction.Kind.DEPOSIT,
                    legs=[
                        (clearing[key], -p.amount),
                        (wallets[(p.player_id, p.currency_id)], p.amount),
                    ],
                    brand_id=p.brand_id,
                    player_id=p.player_id,
                    player=p.player,
                    description=f"Deposit {p.reference}",
                    object_type="payments.deposit",
                    object_id=str(p.pk),
                )
            )
        ledger.do_post_transfers_batch(transfers)

    def _cash_accounts(self, wanted: set[tuple[Player, str]]) -> dict[tuple[int, str], Account]:
        """Each player's cash account in the currency; wallets missing (a first deposit) are
        created whole, as `ledger.get_wallet` creates them, with their history rows."""
        players = {p.pk: p for p, _ in wanted}
        currencies = {c for _, c in wanted}
        found = {
            (a.player_id, a.currency_id, a.kind): a
            for a in Account.objects.filter(
                player_id__in=players, currency_id__in=currencies, kind__in=WALLET_KINDS
            )
        }
        missing = [
            Account(
                brand_id=player.brand_id, player_id=player.pk, kind=kind, ref="", currency_id=code
            )
            for player, code in sorted(wanted, key=lambda w: (w[0].pk, w[1]))
            for kind in WALLET_KINDS
            if (player.pk, code, kind) not in found
        ]
        if missing:
            Account.objects.bulk_create(missing)
            Account.history.bulk_history_create(missing, default_date=self.now)
            found.update({(a.player_id, a.currency_id, a.kind): a for a in missing})
        return {(p.pk, code): found[(p.pk, code, Account.Kind.CASH)] for p, code in wanted}

    def _timeline(self, groups: list[_Group]) -> None:
        """What `payments.advance` appends for each status, for every payment at once (with
        the players app's own field rules, `players.timeline._fields`, in one INSERT)."""
        from players.models import TimelineEvent
        from players.timeline import _fields

        events = []
        for g in groups:
            if not g.timeline:
                continue
            p = g.payment
            money = format_money(p.amount, p.currency_id)
            subject = p.as_kind()
            for statuses, actor_label in g.timeline:
                for status, reason in statuses:
                    summary = f"Deposit of {money} via {p.psp.name}: {S(status).label.lower()}"
                    if reason:
                        summary += f" ({reason.replace('_', ' ')})"
                    events.append(
                        {
                            "player": p.player,
                            "kind": "payment",
                            "action": f"{p.kind}.{status}",
                            "summary": summary,
                            "subject": subject,
                            "actor": None,
                            "actor_label": actor_label,
                            "data": {
                                "payment_id": p.pk,
                                "status": status,
                                "reference": p.reference,
                            },
                        }
                    )
        if events:
            insert_rows(TimelineEvent, [_fields(**e) for e in events])


def _update_payments(payments: list[Payment]) -> None:
    """What `advance` saves of each payment, in one UPDATE."""
    columns = {
        "status": "text",
        "status_changed_at": "timestamptz",
        "status_reason": "text",
        "psp_reference": "text",
        "psp_note": "text",
    }
    params = [[p.pk for p in payments]]
    params += [[_plain(getattr(p, c)) for p in payments] for c in columns]
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    arrays = ", ".join(f"%s::{t}[]" for t in columns.values())
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Payment._meta.db_table} AS p SET {assignments} "
            f"FROM unnest(%s::bigint[], {arrays}) AS v(id, {', '.join(columns)}) "
            f"WHERE p.id = v.id",
            params,
        )


def _plain(value):
    return str(value) if isinstance(value, str) else value  # TextChoices members as text


_TRACKED: list[str] = []


def _version(payment: Payment) -> dict:
    """The payment's tracked fields, as its history stores them."""
    if not _TRACKED:  # `Payment.history` builds a manager on every access: read it once
        _TRACKED.extend(f.attname for f in Payment.history.model.tracked_fields)
    return {name: getattr(payment, name) for name in _TRACKED}


def insert_rows(model, rows: list[dict]) -> None:
    """INSERT rows (attname -> value; a column a row leaves out takes its field's default) in one
    statement over unnest()ed arrays, without a model instance per row, which is most of what
    `bulk_create` costs. Like `bulk_create`, it sends no signals and writes no history."""
    given = set().union(*(r.keys() for r in rows))
    fields = [f for f in model._meta.concrete_fields if not f.primary_key or f.attname in given]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.cast_db_type(connection)}[]" for f in fields)
    params = []
    for f in fields:
        default = f.get_default()
        prep = f.get_db_prep_save
        params.append([prep(r.get(f.attname, default), connection) for r in rows])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) SELECT * FROM unnest({arrays})",
            params,
        )
