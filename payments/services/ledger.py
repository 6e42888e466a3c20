"""Posting to the ledger: the only code that writes entries or changes a cached balance.

A posting is one `LedgerTransaction` and its entries. `do_post_transfer` and the batched
`do_post_transfers_batch` validate the legs in Python and send everything as ONE statement, a
call of the PL/pgSQL function `payments_ledger_post` (migration payments 0005), which:

1. inserts the transaction headers with `ON CONFLICT (idempotency_key) DO NOTHING`: the unique
   index decides a race between two posts of the same key (the second waits for the first to
   commit, then finds the key taken and returns the first posting, or raises
   `IdempotencyConflict` when the legs differ);
2. locks every account touched, in id order, with one `SELECT ... ORDER BY id FOR UPDATE`
   (a fixed order, so two postings never deadlock), and refuses a player balance below zero,
   an unknown account, a foreign brand, unbalanced legs or another player's wallet (custom
   SQLSTATEs LG001-LG003, turned back into the exceptions of `payments.exceptions` here);
3. inserts the entries with their running `balance_after`, updates the cached balances and
   appends the players' timeline events in one statement.

Outside a transaction that statement commits on its own: one round trip per posting, and the
row locks are held only for the function and the commit. Inside the caller's transaction it is
one more statement of it. Entries, balances and timeline rows bypass model signals on purpose:
entries are their own history and the balance is kept out of the account's history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.utils import timezone

from backoffice.money import format_money

from ..exceptions import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientFunds,
    UnbalancedTransfer,
    UnknownCurrency,
)
from ..models import Account, Currency, LedgerTransaction

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
    """Post many transfers in one database transaction, in the same one statement as one.

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
        if isinstance(account_id, bool) or not isinstance(account_id, int):
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


_POST_SQL = (
    "SELECT o_id, o_key, o_replayed FROM payments_ledger_post("
    "%s::json, %s::integer[], %s::bigint[], %s::bigint[], %s::bigint, %s::text)"
)
_ERRORS = {"LG001": UnbalancedTransfer, "LG002": InsufficientFunds, "LG003": IdempotencyConflict}
_ACCOUNT_LABELS = dict(Account.Kind.choices)
_TXN_FIELDS = [f.attname for f in LedgerTransaction._meta.concrete_fields]


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
    actor_label = acting_user.get_username() if actor_id is not None else "system"
    batch = list(unique.values())
    rows_json: list[dict[str, Any]] = []
    leg_transfers: list[str] = []
    leg_accounts: list[str] = []
    leg_amounts: list[str] = []
    for position, t in enumerate(batch, 1):
        rows_json.append(
            {
                "key": t.idempotency_key,
                "kind": t.kind,
                "fingerprint": t._fingerprint,
                "brand": t.brand_id,
                "player": t.player_id,
                "reverses": t.reverses_id,
                "object_type": t.object_type,
                "object_id": t.object_id,
                "description": t.description[:300],
                "reason_code": t.reason_code[:40],
                "approval": t.approval_id,
                "created_at": (t.created_at or now).isoformat(),
                "timeline": _KIND_LABELS[t.kind]
                if t.timeline and t.player_id is not None
                else None,
            }
        )
        for leg in t._legs:
            leg_transfers.append(str(position))
            leg_accounts.append(str(leg.account_id))
            leg_amounts.append(str(leg.amount))
    # Array literals of validated ints, and the rest as JSON: both quoted as one string each,
    # which is much cheaper than adapting a dozen Python lists element by element.
    params = [
        json.dumps(rows_json),
        "{" + ",".join(leg_transfers) + "}",
        "{" + ",".join(leg_accounts) + "}",
        "{" + ",".join(leg_amounts) + "}",
        actor_id,
        actor_label,
    ]
    try:
        # One statement: outside a transaction it is its own (one round trip, commit
        # included); inside one, a failure must roll the caller's transaction back.
        if connection.in_atomic_block:
            with transaction.atomic(savepoint=False), connection.cursor() as cursor:
                cursor.execute(_POST_SQL, params)
                rows = cursor.fetchall()
        else:
            with connection.cursor() as cursor:
                cursor.execute(_POST_SQL, params)
                rows = cursor.fetchall()
    except DatabaseError as exc:
        raise _ledger_error(exc) from exc

    found: dict[str, LedgerTransaction] = {}
    replays = [pk for pk, _, replayed in rows if replayed]
    if replays:
        for txn in LedgerTransaction.objects.filter(pk__in=replays):
            txn.replayed = True
            found[txn.idempotency_key] = txn
    for (pk, key, replayed), t in zip(rows, batch, strict=True):
        if replayed:
            continue
        txn = LedgerTransaction.from_db(
            "default",
            _TXN_FIELDS,
            [pk, key, t.kind, t._fingerprint, t.brand_id, t.player_id, t.reverses_id,
             t.object_type, t.object_id, t.description[:300], t.reason_code[:40],
             actor_id, t.approval_id, t.created_at or now],
        )  # fmt: skip
        txn.replayed = False
        found[key] = txn
    return [found[t.idempotency_key] for t in transfers]


def _ledger_error(exc: DatabaseError) -> Exception:
    """The LedgerError behind one of payments_ledger_post's SQLSTATEs, else `exc` itself."""
    cause = exc.__cause__
    error = _ERRORS.get(getattr(cause, "sqlstate", None) or "")
    if error is None:
        return exc
    diag = cause.diag
    if error is not InsufficientFunds:
        return error(diag.message_primary)
    d = json.loads(diag.message_detail)
    label = _ACCOUNT_LABELS[d["kind"]].lower()
    return InsufficientFunds(
        f"Not enough {label}: {format_money(d['available'], d['currency'])} available, "
        f"{format_money(d['needed'], d['currency'])} needed.",
        account_id=d["account_id"],
        shortfall=d["needed"] - d["available"],
    )
