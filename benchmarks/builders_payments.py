"""Payments and the ledger for the benchmark dataset, balanced so `check_ledger` passes.

Layout (N players, P payments, ids predictable):
- accounts: player p's cash account has id p, its locked account id N + p; brand b's PSP
  clearing account 2N + b, its game-provider account 2N + 3 + b.
- payments 1..0.7P are credited deposits (10,000.00-ish), then paid withdrawals, then the last
  `pending` withdrawals still waiting in the queue (requested / in review), then P bet rounds
  (no payment row) so the ledger holds about 4 entries per payment.
- entries are written in an order where every player's deposits come before their debits, so
  no running balance is ever negative; `balance_after` is the running sum per account.
"""

from __future__ import annotations

from django.db import connection

from .builders import brand_of
from .sqlgen import insert_select, reset_sequence

DEPOSIT = 10_000
WITHDRAWAL = 1_000
BET = 100


def _sizes(scale) -> dict[str, int]:
    pending = min(10_000, scale.payments // 5)
    deposits = int(scale.payments * 0.7)
    withdrawals = scale.payments - deposits
    return {
        "n": scale.players,
        "deposits": deposits,
        "paid": withdrawals - pending,
        "pending": pending,
        "bets": scale.payments,
    }


def _player(expr: str, n: int) -> str:
    # bigint: at scale M and above, ids times 7919 pass the 32-bit range.
    return f"(1 + (({expr})::bigint * 7919) % {n})"


def build_psps(scale) -> int:
    from backoffice.models import Brand
    from payments.models import Currency, PaymentMethod, Psp

    for code, name, exponent, crypto in (("EUR", "Euro", 2, False), ("SEK", "Swedish krona", 2, False),
                                         ("BTC", "Bitcoin", 8, True)):  # fmt: skip
        Currency.objects.get_or_create(
            code=code, defaults={"name": name, "exponent": exponent, "is_crypto": crypto}
        )
    count = 0
    for brand in Brand.objects.order_by("id"):
        psp = Psp.objects.create(
            brand=brand,
            code=f"cardpay-{brand.code}",
            name=f"CardPay {brand.name}",
            adapter="cardpay",
        )
        PaymentMethod.objects.create(
            psp=psp, brand=brand, kind="card", currency_id=brand.default_currency
        )
        count += 1
    return count


def build_accounts(scale) -> int:
    from payments.models import Account

    n = scale.players
    cur = "(ARRAY['EUR','SEK','BTC'])[1 + i % 3]"
    rows = insert_select(
        Account,
        {"id": "i", "brand_id": brand_of("i"), "player_id": "i", "kind": "'cash'", "ref": "''",
         "currency_id": cur, "balance": "0"},
        f"generate_series(1, {n}) AS g(i)",
        with_id=True,
    )  # fmt: skip
    rows += insert_select(
        Account,
        {"id": f"{n} + i", "brand_id": brand_of("i"), "player_id": "i", "kind": "'locked'",
         "ref": "''", "currency_id": cur, "balance": "0"},
        f"generate_series(1, {n}) AS g(i)",
        with_id=True,
    )  # fmt: skip
    for offset, kind, ref in (
        (0, "psp_clearing", "'cardpay-' || b.code"),
        (3, "game_provider", "'provider'"),
    ):
        rows += insert_select(
            Account,
            {"id": f"{2 * n + offset} + b.id", "brand_id": "b.id", "player_id": "NULL",
             "kind": f"'{kind}'", "ref": ref, "currency_id": "b.default_currency", "balance": "0"},
            "backoffice_brand AS b",
            with_id=True,
        )  # fmt: skip
    reset_sequence(Account)
    return rows


def _payment_source(scale) -> str:
    """(id, player, kind, status, amount) for every payment, in id order."""
    s = _sizes(scale)
    n = s["n"]
    d, paid, pending = s["deposits"], s["paid"], s["pending"]
    return (
        f"(SELECT i AS id, {_player('i', n)} AS p, 'deposit' AS kind, "
        f"CASE WHEN i % 50 = 7 AND (i / {n}) % 2 = 1 THEN 'failed' ELSE 'credited' END AS status, "
        f"{DEPOSIT} + (i % 7) * 100 AS amount FROM generate_series(1, {d}) AS g(i) "
        f"UNION ALL SELECT {d} + i, {_player('i', n)}, 'withdrawal', 'paid', {WITHDRAWAL} "
        f"FROM generate_series(1, {paid}) AS g(i) "
        f"UNION ALL SELECT {d + paid} + i, {_player(f'{paid} + i', n)}, 'withdrawal', "
        f"CASE WHEN i % 3 = 0 THEN 'in_review' ELSE 'requested' END, {WITHDRAWAL} + i % 900 "
        f"FROM generate_series(1, {pending}) AS g(i)) AS s"
    )


def build_payments(scale) -> int:
    from payments.models import Payment

    s = _sizes(scale)
    total = s["deposits"] + s["paid"] + s["pending"]
    minutes = f"({total} - s.id) / 3"
    rows = insert_select(
        Payment,
        {
            "id": "s.id",
            "kind": "s.kind",
            "brand_id": brand_of("s.p"),
            "player_id": "s.p",
            "psp_id": brand_of("s.p"),
            "method_id": brand_of("s.p"),
            "method_kind": "'card'",
            "country": "(ARRAY['MT','SE','CW'])[1 + s.p % 3]",
            "currency_id": "(ARRAY['EUR','SEK','BTC'])[1 + s.p % 3]",
            "amount": "s.amount",
            "reference": "upper(left(s.kind, 1)) || lpad(s.id::text, 10, '0')",
            "psp_reference": "'psp-' || s.id",
            "instrument": "'4242 •••• ' || lpad((s.p % 10000)::text, 4, '0')",
            "instrument_fingerprint": "md5(s.p::text)",
            "status": "s.status",
            "status_changed_at": f"now() - ({minutes} || ' minutes')::interval",
            "created_at": f"now() - ({minutes} || ' minutes')::interval - interval '2 minutes'",
        },
        _payment_source(scale),
        with_id=True,
    )
    reset_sequence(Payment)
    return rows


def build_transitions(scale) -> int:
    from payments.models import PaymentTransition

    first = "CASE WHEN p.kind = 'deposit' THEN 'initiated' ELSE 'requested' END"
    rows = insert_select(
        PaymentTransition,
        {"payment_id": "p.id", "from_status": "''", "to_status": first, "at": "p.created_at",
         "actor_kind": "CASE WHEN p.kind = 'deposit' THEN 'psp' ELSE 'player' END"},
        "payments_payment AS p",
    )  # fmt: skip
    rows += insert_select(
        PaymentTransition,
        {"payment_id": "p.id", "from_status": first, "to_status": "p.status",
         "at": "p.status_changed_at", "actor_kind": "'psp'"},
        "payments_payment AS p WHERE p.status NOT IN ('requested')",
    )  # fmt: skip
    return rows


def _txn_source(scale) -> str:
    """(id, kind, player, payment id or NULL) for every ledger transaction, in id order."""
    s = _sizes(scale)
    n = s["n"]
    d, paid, pending, bets = s["deposits"], s["paid"], s["pending"], s["bets"]
    return (
        f"(SELECT p.id AS id, CASE p.kind WHEN 'deposit' THEN 'deposit' ELSE "
        f"CASE p.status WHEN 'paid' THEN 'withdrawal_payout' ELSE 'withdrawal_lock' END END AS kind, "
        f"p.player_id AS p, p.id AS payment_id, p.amount AS amount, p.created_at AS at "
        f"FROM payments_payment p WHERE p.status <> 'failed' "
        f"UNION ALL SELECT {d + paid + pending} + i, 'bet', {_player(f'{d} + i', n)}, NULL, "
        f"{BET}, now() - (({bets} - i) / 5 || ' seconds')::interval "
        f"FROM generate_series(1, {bets}) AS g(i)) AS t"
    )


def build_ledger_transactions(scale) -> int:
    from payments.models import LedgerTransaction

    rows = insert_select(
        LedgerTransaction,
        {
            "id": "t.id",
            "idempotency_key": "'bench:' || t.kind || ':' || t.id",
            "kind": "t.kind",
            "fingerprint": "md5(t.id::text) || md5(t.kind)",
            "brand_id": brand_of("t.p"),
            "player_id": "t.p",
            "object_type": "CASE WHEN t.payment_id IS NULL THEN '' ELSE 'payments.payment' END",
            "object_id": "COALESCE(t.payment_id::text, '')",
            "description": "t.kind",
            "created_at": "t.at",
        },
        _txn_source(scale),
        with_id=True,
    )
    reset_sequence(LedgerTransaction)
    return rows


def build_ledger_entries(scale) -> int:
    from payments.models import LedgerEntry

    n = scale.players
    # Two legs per transaction, from the same source (no read-back join): the player side
    # (+amount on cash for a deposit, -amount for a payout, a lock or a bet) and the house or
    # locked side that balances it. Entry ids are 2 * transaction - 1 and 2 * transaction, so
    # they need no numbering sort; the running balance is one window over (account, id), and
    # the rows go in in id order so the table's physical order follows time, as a real
    # ledger's does (the BRIN index on created_at relies on it).
    house = f"{2 * n} + {brand_of('t.p')}"
    player_side = "CASE WHEN t.kind = 'deposit' THEN t.amount ELSE -t.amount END"
    # One scan of the source per leg: twice as fast as two legs per row from a LATERAL VALUES.
    source = f"""(SELECT l.*, SUM(l.amount) OVER (PARTITION BY l.account ORDER BY l.eid) AS running
        FROM (SELECT 2 * t.id - 1 AS eid, t.p, t.at, t.p AS account, {player_side} AS amount
              FROM {_txn_source(scale)}
              UNION ALL
              SELECT 2 * t.id, t.p, t.at,
                     CASE t.kind WHEN 'withdrawal_lock' THEN {n} + t.p
                                 WHEN 'bet' THEN {house} + 3 ELSE {house} END,
                     -({player_side})
              FROM {_txn_source(scale)}) AS l
        ORDER BY l.eid) AS e"""
    with connection.cursor() as cursor:
        # Two sorts of every entry (about 1.8 GB each at scale L): in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '2500MB'")
    rows = insert_select(
        LedgerEntry,
        {
            "id": "e.eid",
            "transaction_id": "(e.eid + 1) / 2",
            "account_id": "e.account",
            "brand_id": brand_of("e.p"),
            "player_id": f"CASE WHEN e.account <= {2 * n} THEN e.p END",
            "currency_id": "(ARRAY['EUR','SEK','BTC'])[1 + e.p % 3]",
            "amount": "e.amount",
            "balance_after": "e.running",
            "created_at": "e.at",
        },
        source,
        with_id=True,
    )
    reset_sequence(LedgerEntry)
    return rows


def build_balances(scale) -> int:
    """Each account's cached balance: the sum of its entries."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE payments_account a SET balance = s.total FROM (SELECT account_id, "
            "SUM(amount) AS total FROM payments_ledgerentry GROUP BY account_id) s "
            "WHERE s.account_id = a.id"
        )
        return cursor.rowcount


def build_queue(scale) -> int:
    """Risk assessments and review rows for the pending withdrawals (the queue's dataset)."""
    try:
        from payments.models import RiskAssessment, WithdrawalReview
    except ImportError:
        return 0
    pending = "payments_payment AS p WHERE p.kind = 'withdrawal' AND p.status IN ('requested', 'in_review')"
    rows = insert_select(
        RiskAssessment,
        {
            "withdrawal_id": "p.id",
            "brand_id": "p.brand_id",
            "score": "(p.id * 37) % 100",
            "path": "CASE WHEN (p.id * 37) % 100 >= 70 THEN 'manual' ELSE 'review' END",
            "factors": """jsonb_build_array(jsonb_build_object('code', 'new_method', 'value', true,
                'weight', 30, 'explanation', 'Withdrawal to a method never used to deposit'))""",
            "policy": "'{}'::jsonb",
            "assessed_at": "p.created_at",
        },
        pending,
    )
    rows += insert_select(
        WithdrawalReview,
        {"withdrawal_id": "p.id", "brand_id": "p.brand_id", "updated_at": "p.created_at"},
        pending,
    )
    return rows


def steps(scale):
    return [
        ("psps", build_psps),
        ("accounts", build_accounts),
        ("payments", build_payments),
        ("payment transitions", build_transitions),
        ("ledger transactions", build_ledger_transactions),
        ("ledger entries", build_ledger_entries),
        ("account balances", build_balances),
        ("withdrawal queue", build_queue),
    ]
