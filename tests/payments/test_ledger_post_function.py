"""payments_ledger_post, the one-statement posting: what it writes beside the entries (timeline
events, money formatting), large batches, unknown accounts, and many writers at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from backoffice.money import format_money
from payments.exceptions import InsufficientFunds, UnbalancedTransfer
from payments.ledger_check import find_ledger_problems
from payments.models import Account, LedgerEntry, LedgerTransaction
from payments.services import ledger
from payments.services.ledger import Leg, Transfer
from players.models import TimelineEvent
from tests.factories import PlayerFactory


def _balance(account) -> int:
    return Account.objects.values_list("balance", flat=True).get(pk=account.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "minor, code",
    [
        (0, "EUR"), (5, "EUR"), (2500, "EUR"), (123456789, "EUR"), (-123456, "EUR"),
        (1000, "JPY"), (1234567, "JPY"), (123456, "KWD"), (12345, "BTC"), (100000000, "BTC"),
        (9_223_372_036_854_775_807, "JPY"), (1, "USDT"),
    ],
)  # fmt: skip
def test_summaries_format_money_like_python(minor, code):
    from backoffice.money import exponent_for

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT payments_format_money(%s, %s, %s)", [minor, code, exponent_for(code)]
        )
        assert cursor.fetchone()[0] == format_money(minor, code)


@pytest.mark.django_db
def test_timeline_event_says_what_moved_who_did_it_and_points_at_the_transaction(
    player, house, fund, make_staff
):
    fund(player, 1_000_000)
    staff = make_staff("Payments")
    wallet = ledger.get_wallet(player, "EUR")
    txn = ledger.do_post_transfer(
        idempotency_key="conv",
        kind="bonus_conversion",
        legs=[(wallet["cash"], -123456), (wallet["bonus"], 123456)],
        brand=player.brand_id,
        player=player.pk,
        description="wagering met",
        acting_user=staff,
    )
    event = TimelineEvent.objects.get(player=player, action="ledger.bonus_conversion")
    assert event.summary == (
        "Bonus converted to cash: cash −1,234.56 EUR, bonus +1,234.56 EUR — wagering met"
    )
    assert event.kind == "ledger"
    assert event.brand_id == player.brand_id
    assert event.actor_label == staff.get_username()
    assert (event.object_type, event.object_id) == ("payments.ledgertransaction", str(txn.pk))
    assert event.data == {"transaction_id": txn.pk}
    stored = LedgerTransaction.objects.get(pk=txn.pk)
    assert event.occurred_at == txn.created_at == stored.created_at
    assert txn.created_by_id == staff.pk


@pytest.mark.django_db
def test_timeline_false_and_house_only_postings_write_no_event(player, house, fund):
    fund(player, 100)
    wallet = ledger.get_wallet(player, "EUR")
    before = TimelineEvent.objects.count()
    ledger.do_post_transfer(
        idempotency_key="quiet",
        kind="bet",
        legs=[(wallet["cash"], -10), (house(Account.Kind.GAME_PROVIDER, ref="g"), 10)],
        brand=player.brand_id,
        player=player,
        timeline=False,
    )
    ledger.do_post_transfer(
        idempotency_key="house",
        kind="transfer",
        legs=[(house(Account.Kind.FEES, ref=""), -10), (house(), 10)],
        brand=player.brand_id,
    )
    assert TimelineEvent.objects.count() == before


@pytest.mark.django_db
def test_unknown_account_is_refused_and_nothing_is_written(player, house):
    wallet = ledger.get_wallet(player, "EUR")
    unknown = pytest.raises(UnbalancedTransfer, match=r"Unknown account\(s\): \[987654321\]")
    with unknown, transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="ghost",
            kind="deposit",
            legs=[(987654321, -5), (wallet["cash"], 5)],
            brand=player.brand_id,
            player=player,
        )
    assert not LedgerTransaction.objects.filter(idempotency_key="ghost").exists()


@pytest.mark.django_db
def test_a_posting_inside_the_callers_transaction_rolls_back_with_it(player, house):
    wallet = ledger.get_wallet(player, "EUR")
    with transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="undone",
            kind="deposit",
            legs=[(house(), -5), (wallet["cash"], 5)],
            brand=player.brand_id,
            player=player,
        )
        transaction.set_rollback(True)
    assert _balance(wallet["cash"]) == 0
    assert not LedgerTransaction.objects.filter(idempotency_key="undone").exists()


def _rounds(player, wallet, provider, n, *, prefix="r"):
    """n bets of 100 and a win of 150 after every other bet: the balance dips by 200 before
    each win, so the entries must be applied in exactly this order."""
    cash, brand = wallet["cash"].pk, player.brand_id
    transfers = []
    for i in range(n):
        bet = [Leg(cash, -100), Leg(provider.pk, 100)]
        transfers.append(Transfer(f"{prefix}:{i}:bet", "bet", bet, brand, player.pk))
        if i % 2:
            win = [Leg(provider.pk, -150), Leg(cash, 150)]
            transfers.append(Transfer(f"{prefix}:{i}:win", "win", win, brand, player.pk))
    return transfers


@pytest.mark.django_db
def test_a_large_batch_keeps_its_order_and_running_balances(
    player, house, fund, django_assert_num_queries
):
    fund(player, 10_200)  # the lowest point, before the last win, is 50
    wallet = ledger.get_wallet(player, "EUR")
    provider = house(Account.Kind.GAME_PROVIDER, ref="big")
    transfers = _rounds(player, wallet, provider, 400)
    with django_assert_num_queries(1):
        txns = ledger.do_post_transfers_batch(transfers)
    assert [t.idempotency_key for t in txns] == [t.idempotency_key for t in transfers]
    assert [t.pk for t in txns] == sorted(t.pk for t in txns)
    assert _balance(wallet["cash"]) == 10_200 - 400 * 100 + 200 * 150
    afters = list(
        LedgerEntry.objects.filter(account=wallet["cash"])
        .order_by("id")
        .values_list("balance_after", flat=True)
    )
    assert min(afters) == 50 and afters[-1] == _balance(wallet["cash"])
    assert TimelineEvent.objects.filter(player=player, kind="ledger").count() == 1 + 600
    assert list(find_ledger_problems()) == []


@pytest.mark.django_db
def test_a_large_batch_names_the_transfer_that_would_overdraw(player, house, fund):
    fund(player, 2_700)
    wallet = ledger.get_wallet(player, "EUR")
    provider = house(Account.Kind.GAME_PROVIDER, ref="big")
    transfers = _rounds(player, wallet, provider, 100)
    # one more bet of 10,000 in the middle: the running balance there is 2,700 - 25 * 50
    middle = next(i for i, t in enumerate(transfers) if t.idempotency_key == "r:50:bet")
    transfers.insert(
        middle,
        Transfer("huge", "bet", [Leg(wallet["cash"].pk, -10_000), Leg(provider.pk, 10_000)],
                 player.brand_id, player.pk),
    )  # fmt: skip
    with pytest.raises(InsufficientFunds) as info, transaction.atomic():
        ledger.do_post_transfers_batch(transfers)
    assert str(info.value) == (
        "Not enough cash (withdrawable): 14.50 EUR available, 100.00 EUR needed."
    )
    assert info.value.shortfall == 10_000 - 1_450
    assert info.value.account_id == wallet["cash"].pk
    assert _balance(wallet["cash"]) == 2_700
    assert not LedgerTransaction.objects.filter(idempotency_key__startswith="r:").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_eight_writers_on_one_hot_account_and_replays_add_up(brand_a, currencies):
    clearing = ledger.get_house_account(brand_a.pk, Account.Kind.PSP_CLEARING, "EUR", "hot")
    people = [PlayerFactory(brand=brand_a, currency="EUR") for _ in range(8)]
    wallets = [ledger.get_wallet(p, "EUR")["cash"].pk for p in people]
    connection.close()
    barrier = threading.Barrier(8)

    def writer(w):
        try:
            barrier.wait(timeout=30)
            for i in range(15):
                # every writer also posts the shared keys: each must land exactly once
                key = f"shared:{i}" if i % 5 == 0 else f"w{w}:{i}"
                target = wallets[0] if key.startswith("shared") else wallets[w]
                player = people[0] if key.startswith("shared") else people[w]
                ledger.do_post_transfer(
                    idempotency_key=key,
                    kind="deposit",
                    legs=[(clearing.pk, -7), (target, 7)],
                    brand=brand_a.pk,
                    player=player.pk,
                    timeline=i % 2 == 0,
                )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(writer, range(8)))
    transactions = LedgerTransaction.objects.count()
    assert transactions == 8 * 12 + 3
    assert _balance(clearing) == -7 * transactions
    assert list(find_ledger_problems()) == []
