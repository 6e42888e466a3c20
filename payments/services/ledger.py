"""Posting to the ledger: the only code that writes entries or changes a cached balance.

A posting is one `LedgerTransaction` and its entries. `do_post_transfer` and the batched
`do_post_transfers_batch` run the same four statements whatever the number of legs:

1. insert the transaction headers with `ON CONFLICT (idempotency_key) DO NOTHING`: the unique
   index decides a race between two posts of the same key (the second waits for the first to
   commit, then finds the key taken and returns the first posting, or raises
   `IdempotencyConflict` when the legs differ);
2. lock every account touched, in id order, with one `SELECT ... ORDER BY id FOR UPDATE`
   (a fixed order, so two postings never deadlock), and refuse a player balance below zero;
3. insert the entries and update the cached balances in one statement (a data-modifying CTE
   feeding `UPDATE ... FROM (VALUES ...)`);
4. append the player's timeline events.

Statement 3 bypasses model signals on purpose: entries are their own history and the balance is
kept out of the account's history.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from backoffice.money import format_money

from ..exceptions import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientFunds,
    UnbalancedTransfer,
    UnknownCurrency,
)
from ..models import Account, Currency, LedgerEntry, LedgerTransaction

PLAYER_KINDS = Account.PLAYER_KINDS
_KIND_LABELS = dict(LedgerTransaction.Kind.choices)


@dataclass(frozen=True)
class Leg:
    """One side of a posting: a signed amount in minor units on an account."""

    account_id: int
    amount: int


@dataclass
class Transfer:
    """Everything one posting needs; the unit of `do_post_transfers_batch`."""

    idempotency_key: str
    kind: str
    legs: Sequence[Leg | tuple[Any, int]]
    brand_id: int
    player_id: int | None = None
    description: str = ""
    reason_code: str = ""
    object_type: str = ""
    object_id: str = ""
    reverses_id: int | None = None
    approval_id: int | None = None
    created_at: datetime | None = None
    timeline: bool = True
    player: Any = None  # a Player instance when the caller has one (saves a timeline lookup)
    _legs: list[Leg] = field(default_factory=list, repr=False)
    _fingerprint: str = field(default="", repr=False)


# -- accounts -----------------------------------------------------------------------------


def get_currency(code: str) -> Currency:
    try:
        return Currency.objects.get(pk=(code or "").upper())
    except Currency.DoesNotExist:
        raise UnknownCurrency(f"Currency {code!r} is not configured.")


def get_wallet(player, currency: str) -> dict[str, Account]:
    """The player's cash, bonus and locked accounts in `currency`, created when missing.

    One SELECT when they exist (the common case); creation goes through the ORM so the
    account's history records it, and a concurrent creator is absorbed by the unique index.
    """
    code = (currency or "").upper()
    found = {a.kind: a for a in Account.objects.filter(player_id=player.pk, currency_id=code)}
    missing = [
        k for k in (Account.Kind.CASH, Account.Kind.BONUS, Account.Kind.LOCKED) if k not in found
    ]
    if missing:
        get_currency(code)
        for kind in missing:
            found[kind] = _get_or_create_account(
                brand_id=player.brand_id, player_id=player.pk, kind=kind, ref="", currency_id=code
            )
    return found


def get_house_account(brand_id: int, kind: str, currency: str, ref: str = "") -> Account:
    """The house account of `kind` for a brand, currency and PSP/provider code, created when
    missing."""
    if kind in PLAYER_KINDS:
        raise ValueError(f"{kind} is a player account kind.")
    code = (currency or "").upper()
    account = Account.objects.filter(
        brand_id=brand_id, kind=kind, ref=ref, currency_id=code, player__isnull=True
    ).first()
    if account is not None:
        return account
    get_currency(code)
    return _get_or_create_account(
        brand_id=brand_id, player_id=None, kind=kind, ref=ref, currency_id=code
    )


def _get_or_create_account(**fields) -> Account:
    lookup = {k: v for k, v in fields.items() if k != "brand_id"}
    if fields["player_id"] is None:
        lookup = {**lookup, "brand_id": fields["brand_id"], "player__isnull": True}
        lookup.pop("player_id")
    try:
        with transaction.atomic():
            return Account.objects.create(**fields)
    except IntegrityError:
        return Account.objects.get(**lookup)


# -- posting ------------------------------------------------------------------------------


def do_post_transfer(
    *,
    idempotency_key: str,
    kind: str,
    legs: Sequence[Leg | tuple[Any, int]],
    brand,
    player=None,
    subject: models.Model | None = None,
    description: str = "",
    reason_code: str = "",
    reverses: LedgerTransaction | int | None = None,
    approval=None,
    created_at: datetime | None = None,
    timeline: bool = True,
    acting_user=None,
) -> LedgerTransaction:
    """Post one balanced transfer and return its transaction.

    Guarantees: the legs sum to zero per currency; no player balance ends below zero
    (`InsufficientFunds`, nothing written); the same `idempotency_key` posted again returns the
    first transaction (with `.replayed = True`) and with different legs raises
    `IdempotencyConflict`. Accounts are locked in id order, so concurrent postings serialise per
    account and never deadlock.
    """
    object_type, object_id = "", ""
    if subject is not None:
        object_type, object_id = subject._meta.label_lower, str(subject.pk)
    transfer = Transfer(
        idempotency_key=idempotency_key,
        kind=kind,
        legs=legs,
        brand_id=getattr(brand, "pk", brand),
        player_id=getattr(player, "pk", player),
        player=player if hasattr(player, "pk") else None,
        description=description,
        reason_code=reason_code,
        object_type=object_type,
        object_id=object_id,
        reverses_id=getattr(reverses, "pk", reverses),
        approval_id=getattr(approval, "pk", approval),
        created_at=created_at,
        timeline=timeline,
    )
    return _post([transfer], acting_user=acting_user)[0]


def do_post_transfers_batch(
    transfers: Sequence[Transfer], *, acting_user=None
) -> list[LedgerTransaction]:
    """Post many transfers in one database transaction with the same four statements as one.

    For imports and game-round batches: the accounts of the whole batch are locked once, in id
    order, and the transfers are applied in the order given. All or nothing: one transfer that
    would take a player below zero, or that conflicts with an earlier key, rolls the whole batch
    back. Transfers whose key was already posted with the same legs are returned as they were.
    """
    return _post(list(transfers), acting_user=acting_user)


def lock_accounts(account_ids: Iterable[int]) -> dict[int, int]:
    """Lock accounts in id order and return their balances, for services that must read a
    balance before they can decide a posting's legs (a chargeback, say). The posting that
    follows in the same transaction finds the locks already held."""
    ids = sorted(set(account_ids))
    rows = (
        Account.objects.select_for_update()
        .filter(id__in=ids)
        .order_by("id")
        .values_list("id", "balance")
    )
    return dict(rows)


def do_reverse_transaction(
    transaction_id: int,
    *,
    acting_user=None,
    description: str = "",
    reason_code: str = "",
    subject: models.Model | None = None,
    approval=None,
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Post the exact opposite of a transaction, pointing at it through `reverses`.

    A transaction is reversed at most once (`AlreadyReversed`); the reversal is refused like
    any posting if it would take a player balance below zero.
    """
    original = LedgerTransaction.objects.get(pk=transaction_id)
    legs = [
        Leg(account_id, -amount)
        for account_id, amount in original.entries.order_by("id").values_list(
            "account_id", "amount"
        )
    ]
    key = idempotency_key or f"reversal:{original.pk}"
    try:
        with transaction.atomic():
            return do_post_transfer(
                idempotency_key=key,
                kind=LedgerTransaction.Kind.REVERSAL,
                legs=legs,
                brand=original.brand_id,
                player=original.player_id,
                subject=subject,
                description=description or f"Reversal of transaction #{original.pk}",
                reason_code=reason_code,
                reverses=original.pk,
                approval=approval,
                acting_user=acting_user,
            )
    except IntegrityError as exc:
        if "reverses" in str(exc):
            raise AlreadyReversed(f"Transaction #{original.pk} has already been reversed.")
        raise


def _normalise(t: Transfer) -> None:
    if not t.idempotency_key or len(t.idempotency_key) > 200:
        raise UnbalancedTransfer("An idempotency key of 1 to 200 characters is required.")
    if t.kind not in _KIND_LABELS:
        raise UnbalancedTransfer(f"Unknown ledger transaction kind {t.kind!r}.")
    legs: list[Leg] = []
    for leg in t.legs:
        if isinstance(leg, Leg):
            account_id, amount = leg.account_id, leg.amount
        else:
            account, amount = leg
            account_id = getattr(account, "pk", account)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise UnbalancedTransfer("Amounts are integers in minor units.")
        if amount == 0:
            raise UnbalancedTransfer("A leg cannot be zero.")
        if not isinstance(account_id, int):
            raise UnbalancedTransfer("Each leg needs an account.")
        legs.append(Leg(account_id, amount))
    if len(legs) < 2:
        raise UnbalancedTransfer("A transfer needs at least two legs.")
    t._legs = legs
    t._fingerprint = fingerprint(t.kind, [(leg.account_id, leg.amount) for leg in legs])


def fingerprint(kind: str, legs: Iterable[tuple[int, int]]) -> str:
    """What makes two postings "the same" for idempotency: the kind and the legs, in any
    order. Bulk loaders (the demo seed) compute it the same way."""
    canonical = json.dumps([kind, sorted(legs)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


_HEADER_COLUMNS = (
    "idempotency_key",
    "kind",
    "fingerprint",
    "brand_id",
    "player_id",
    "reverses_id",
    "object_type",
    "object_id",
    "description",
    "reason_code",
    "created_by_id",
    "approval_id",
    "created_at",
)


def _post(transfers: list[Transfer], *, acting_user) -> list[LedgerTransaction]:
    if not transfers:
        return []
    for t in transfers:
        _normalise(t)
    # The same key twice in one batch: one posting if identical, else a conflict.
    unique: dict[str, Transfer] = {}
    for t in transfers:
        seen = unique.get(t.idempotency_key)
        if seen is None:
            unique[t.idempotency_key] = t
        elif seen._fingerprint != t._fingerprint:
            raise IdempotencyConflict(
                f"Idempotency key {t.idempotency_key!r} appears twice with different legs."
            )
    now = timezone.now()
    actor_id = getattr(acting_user, "pk", None)

    with transaction.atomic(savepoint=False):
        new_ids = _insert_headers(list(unique.values()), now, actor_id)
        replayed_keys = [k for k in unique if k not in new_ids]
        existing = _load_replays(replayed_keys, unique)
        fresh = [t for k, t in unique.items() if k in new_ids]
        created: dict[str, LedgerTransaction] = {}
        if fresh:
            created = _apply(fresh, new_ids, now, acting_user)
    result = []
    for t in transfers:
        txn = created.get(t.idempotency_key) or existing[t.idempotency_key]
        result.append(txn)
    return result


def _insert_headers(transfers: list[Transfer], now: datetime, actor_id) -> dict[str, int]:
    table = LedgerTransaction._meta.db_table
    rows, params = [], []
    for t in transfers:
        rows.append("(" + ", ".join(["%s"] * len(_HEADER_COLUMNS)) + ")")
        params += [
            t.idempotency_key,
            t.kind,
            t._fingerprint,
            t.brand_id,
            t.player_id,
            t.reverses_id,
            t.object_type,
            t.object_id,
            t.description[:300],
            t.reason_code[:40],
            actor_id,
            t.approval_id,
            t.created_at or now,
        ]
    sql = (
        f"INSERT INTO {table} ({', '.join(_HEADER_COLUMNS)}) VALUES {', '.join(rows)} "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: pk for pk, key in cursor.fetchall()}


def _load_replays(keys: list[str], by_key: dict[str, Transfer]) -> dict[str, LedgerTransaction]:
    if not keys:
        return {}
    found = {
        t.idempotency_key: t for t in LedgerTransaction.objects.filter(idempotency_key__in=keys)
    }
    for key in keys:
        txn = found[key]
        if txn.fingerprint != by_key[key]._fingerprint:
            raise IdempotencyConflict(
                f"Idempotency key {key!r} was already used for a different posting "
                f"(transaction #{txn.pk})."
            )
        txn.replayed = True
    return found


def _apply(
    transfers: list[Transfer], ids: dict[str, int], now: datetime, acting_user
) -> dict[str, LedgerTransaction]:
    actor_id = getattr(acting_user, "pk", None)
    account_ids = sorted({leg.account_id for t in transfers for leg in t._legs})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, brand_id, player_id, currency_id, kind, balance "
            f"FROM {Account._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [account_ids],
        )
        accounts = {row[0]: row for row in cursor.fetchall()}
    missing = set(account_ids) - set(accounts)
    if missing:
        raise UnbalancedTransfer(f"Unknown account(s): {sorted(missing)}.")

    balances = {pk: row[5] for pk, row in accounts.items()}
    entry_rows: list[tuple] = []
    txns: dict[str, LedgerTransaction] = {}
    timeline_events: list[dict[str, Any]] = []
    for t in transfers:
        sums: dict[str, int] = defaultdict(int)
        players = set()
        for leg in t._legs:
            _, brand_id, player_id, currency_id, _kind, _ = accounts[leg.account_id]
            if brand_id != t.brand_id:
                raise UnbalancedTransfer(
                    f"Account {leg.account_id} belongs to another brand than the transfer."
                )
            sums[currency_id] += leg.amount
            if player_id is not None:
                players.add(player_id)
        unbalanced = {c: s for c, s in sums.items() if s}
        if unbalanced:
            raise UnbalancedTransfer(f"The legs do not sum to zero: {unbalanced}.")
        if len(players) > 1 or (players and t.player_id not in players):
            raise UnbalancedTransfer("A transfer moves the money of exactly its own player.")
        if t.player_id is not None and not players:
            raise UnbalancedTransfer("The transfer names a player but touches no wallet.")
        created_at = t.created_at or now
        for leg in t._legs:
            _, brand_id, player_id, currency_id, acc_kind, _ = accounts[leg.account_id]
            new_balance = balances[leg.account_id] + leg.amount
            if player_id is not None and new_balance < 0:
                label = dict(Account.Kind.choices)[acc_kind].lower()
                raise InsufficientFunds(
                    f"Not enough {label}: {format_money(balances[leg.account_id], currency_id)} "
                    f"available, {format_money(-leg.amount, currency_id)} needed.",
                    account_id=leg.account_id,
                    shortfall=-new_balance,
                )
            balances[leg.account_id] = new_balance
            entry_rows.append(
                (
                    ids[t.idempotency_key],
                    leg.account_id,
                    brand_id,
                    player_id,
                    currency_id,
                    leg.amount,
                    new_balance,
                    created_at,
                )
            )
        txn = LedgerTransaction(
            id=ids[t.idempotency_key],
            idempotency_key=t.idempotency_key,
            kind=t.kind,
            fingerprint=t._fingerprint,
            brand_id=t.brand_id,
            player_id=t.player_id,
            reverses_id=t.reverses_id,
            object_type=t.object_type,
            object_id=t.object_id,
            description=t.description[:300],
            reason_code=t.reason_code[:40],
            created_by_id=actor_id,
            approval_id=t.approval_id,
            created_at=created_at,
        )
        txn._state.adding = False
        txn._state.db = "default"
        txn.replayed = False
        txns[t.idempotency_key] = txn
        if t.player_id is not None and t.timeline:
            timeline_events.append(_timeline_event(t, txn, accounts, acting_user))

    touched = {row[1] for row in entry_rows}
    _write_entries(entry_rows, {pk: balances[pk] for pk in touched})
    if timeline_events:
        from players.timeline import record_many

        record_many(timeline_events)
    return txns


def _write_entries(entry_rows: list[tuple], new_balances: dict[int, int]) -> None:
    entry_table = LedgerEntry._meta.db_table
    account_table = Account._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(entry_rows))
    balance_values = ", ".join(["(%s::bigint, %s::bigint)"] * len(new_balances))
    params: list[Any] = [v for row in entry_rows for v in row]
    params += [v for pair in new_balances.items() for v in pair]
    sql = (
        f"WITH new_entries AS (INSERT INTO {entry_table} (transaction_id, account_id, brand_id, "
        f"player_id, currency_id, amount, balance_after, created_at) VALUES {values}) "
        f"UPDATE {account_table} AS a SET balance = v.balance "
        f"FROM (VALUES {balance_values}) AS v(id, balance) WHERE a.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _timeline_event(
    t: Transfer, txn: LedgerTransaction, accounts: dict, acting_user
) -> dict[str, Any]:
    parts = []
    for leg in t._legs:
        _, _, player_id, currency_id, acc_kind, _ = accounts[leg.account_id]
        if player_id is None:
            continue
        sign = "+" if leg.amount > 0 else "−"
        parts.append(f"{acc_kind} {sign}{format_money(abs(leg.amount), currency_id)}")
    summary = f"{_KIND_LABELS[t.kind]}: {', '.join(parts)}"
    if t.description:
        summary += f" — {t.description}"
    player = t.player or SimpleNamespace(pk=t.player_id, brand_id=t.brand_id)
    return {
        "player": player,
        "kind": "ledger",
        "action": f"ledger.{t.kind}",
        "summary": summary,
        "subject": txn,
        "actor": acting_user if getattr(acting_user, "pk", None) else None,
        "occurred_at": txn.created_at,
        "data": {"transaction_id": txn.pk},
    }
