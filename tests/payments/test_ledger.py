"""The posting service: balanced, idempotent, never negative, few round trips, append-only."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from payments.exceptions import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientFunds,
    UnbalancedTransfer,
)
from payments.ledger_check import find_ledger_problems
from payments.models import Account, LedgerEntry, LedgerTransaction
from payments.services import ledger
from payments.services.ledger import Leg, Transfer
from players.models import TimelineEvent
from tests.factories import BrandFactory, PlayerFactory

pytestmark = pytest.mark.django_db


def _balance(account) -> int:
    return Account.objects.values_list("balance", flat=True).get(pk=account.pk)


def test_posting_moves_money_and_records_entries(player, house):
    wallet = ledger.get_wallet(player, "EUR")
    clearing = house()
    txn = ledger.do_post_transfer(
        idempotency_key="k1",
        kind="deposit",
        legs=[(clearing, -2500), (wallet["cash"], 2500)],
        brand=player.brand,
        player=player,
        description="first",
    )
    assert txn.replayed is False
    assert _balance(wallet["cash"]) == 2500
    assert _balance(clearing) == -2500
    entries = list(LedgerEntry.objects.filter(transaction=txn).order_by("account_id"))
    assert sorted(e.amount for e in entries) == [-2500, 2500]
    assert {e.balance_after for e in entries} == {2500, -2500}
    by_account = {e.account_id: e for e in entries}
    assert by_account[wallet["cash"].pk].player_id == player.pk
    assert by_account[clearing.pk].player_id is None
    event = TimelineEvent.objects.get(player=player, kind="ledger")
    assert "cash +25.00 EUR" in event.summary
    assert list(find_ledger_problems()) == []


def test_same_key_returns_first_transaction(player, house):
    wallet = ledger.get_wallet(player, "EUR")
    legs = [(house(), -100), (wallet["cash"], 100)]
    first = ledger.do_post_transfer(
        idempotency_key="same", kind="deposit", legs=legs, brand=player.brand_id, player=player
    )
    again = ledger.do_post_transfer(
        idempotency_key="same",
        kind="deposit",
        legs=list(reversed(legs)),  # leg order does not matter
        brand=player.brand_id,
        player=player,
    )
    assert again.pk == first.pk and again.replayed is True
    assert _balance(wallet["cash"]) == 100
    assert LedgerEntry.objects.count() == 2


def test_same_key_with_other_amount_is_a_conflict(player, house):
    wallet = ledger.get_wallet(player, "EUR")
    ledger.do_post_transfer(
        idempotency_key="k",
        kind="deposit",
        legs=[(house(), -100), (wallet["cash"], 100)],
        brand=player.brand_id,
        player=player,
    )
    with pytest.raises(IdempotencyConflict), transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="k",
            kind="deposit",
            legs=[(house(), -101), (wallet["cash"], 101)],
            brand=player.brand_id,
            player=player,
        )
    assert _balance(wallet["cash"]) == 100


def test_refuses_player_balance_below_zero_and_writes_nothing(player, house, fund):
    fund(player, 500)
    wallet = ledger.get_wallet(player, "EUR")
    before = (LedgerTransaction.objects.count(), LedgerEntry.objects.count())
    with pytest.raises(InsufficientFunds) as info, transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="too-much",
            kind="withdrawal_lock",
            legs=[(wallet["cash"], -501), (wallet["locked"], 501)],
            brand=player.brand_id,
            player=player,
        )
    assert info.value.shortfall == 1
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count()) == before
    assert _balance(wallet["cash"]) == 500


def test_house_accounts_may_go_negative(player, house):
    fees = house(Account.Kind.FEES, ref="")
    wallet = ledger.get_wallet(player, "EUR")
    ledger.do_post_transfer(
        idempotency_key="fee",
        kind="transfer",
        legs=[(fees, -7), (wallet["bonus"], 7)],
        brand=player.brand_id,
        player=player,
    )
    assert _balance(fees) == -7


@pytest.mark.parametrize(
    "legs, message",
    [
        ([(0, 100), (1, -99)], "sum to zero"),
        ([(0, 100)], "at least two"),
        ([(0, 0), (1, 0)], "cannot be zero"),
        ([(0, 1.5), (1, -1.5)], "integers"),
        ([(0, True), (1, -1)], "integers"),
    ],
)
def test_rejects_malformed_legs(player, house, legs, message):
    wallet = ledger.get_wallet(player, "EUR")
    accounts = [house(), wallet["cash"]]
    with pytest.raises(UnbalancedTransfer, match=message), transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="bad",
            kind="deposit",
            legs=[(accounts[i], amount) for i, amount in legs],
            brand=player.brand_id,
            player=player,
        )
    assert not LedgerTransaction.objects.exists()


def test_rejects_mixed_currencies_and_foreign_brand(player, house):
    wallet_eur = ledger.get_wallet(player, "EUR")
    wallet_sek = ledger.get_wallet(player, "SEK")
    with pytest.raises(UnbalancedTransfer, match="sum to zero"), transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="fx",
            kind="transfer",
            legs=[(wallet_eur["cash"], 100), (house(currency="SEK"), -100)],
            brand=player.brand_id,
            player=player,
        )
    other_brand = BrandFactory(code="gamma")
    stranger = PlayerFactory(brand=other_brand)
    foreign = ledger.get_wallet(stranger, "SEK")
    with pytest.raises(UnbalancedTransfer, match="another brand"), transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="foreign",
            kind="transfer",
            legs=[(wallet_sek["cash"], 100), (foreign["cash"], -100)],
            brand=player.brand_id,
            player=player,
        )


def test_a_transfer_moves_only_its_own_players_money(player, house, brand_a, fund):
    other = PlayerFactory(brand=brand_a)
    fund(other, 100)
    theirs = ledger.get_wallet(other, "EUR")
    mine = ledger.get_wallet(player, "EUR")
    with pytest.raises(UnbalancedTransfer, match="own player"), transaction.atomic():
        ledger.do_post_transfer(
            idempotency_key="p2p",
            kind="transfer",
            legs=[(theirs["cash"], -100), (mine["cash"], 100)],
            brand=brand_a.pk,
            player=player,
        )


def test_posting_takes_one_statement(player, house, django_assert_num_queries):
    wallet = ledger.get_wallet(player, "EUR")
    clearing = house()
    # header, locks, checks, entries, balances and timeline: one call of payments_ledger_post
    with django_assert_num_queries(1):
        ledger.do_post_transfer(
            idempotency_key="q",
            kind="deposit",
            legs=[(clearing, -10), (wallet["cash"], 10)],
            brand=player.brand_id,
            player=player,
        )
    # a replay costs the header attempt and one read
    with django_assert_num_queries(2):
        ledger.do_post_transfer(
            idempotency_key="q",
            kind="deposit",
            legs=[(clearing, -10), (wallet["cash"], 10)],
            brand=player.brand_id,
            player=player,
        )


def test_batch_posts_in_order_in_one_statement(player, house, fund, django_assert_num_queries):
    fund(player, 5000)
    wallet = ledger.get_wallet(player, "EUR")
    provider = house(Account.Kind.GAME_PROVIDER, ref="pragmatic")
    transfers = []
    for i in range(50):
        transfers.append(
            Transfer(
                idempotency_key=f"round:{i}:bet",
                kind="bet",
                legs=[Leg(wallet["cash"].pk, -100), Leg(provider.pk, 100)],
                brand_id=player.brand_id,
                player_id=player.pk,
                timeline=False,
            )
        )
        if i % 2:
            transfers.append(
                Transfer(
                    idempotency_key=f"round:{i}:win",
                    kind="win",
                    legs=[Leg(provider.pk, -150), Leg(wallet["cash"].pk, 150)],
                    brand_id=player.brand_id,
                    player_id=player.pk,
                    timeline=False,
                )
            )
    with django_assert_num_queries(1):
        txns = ledger.do_post_transfers_batch(transfers)
    assert len(txns) == 75
    assert _balance(wallet["cash"]) == 5000 - 50 * 100 + 25 * 150
    # the running balance never dipped below zero thanks to the order of the batch
    assert LedgerEntry.objects.filter(account=wallet["cash"], balance_after__lt=0).count() == 0
    assert list(find_ledger_problems()) == []
    # replaying the whole batch changes nothing
    again = ledger.do_post_transfers_batch(transfers)
    assert [t.pk for t in again] == [t.pk for t in txns]
    assert _balance(wallet["cash"]) == 3750


def test_batch_is_all_or_nothing(player, house, fund):
    fund(player, 100)
    wallet = ledger.get_wallet(player, "EUR")
    provider = house(Account.Kind.GAME_PROVIDER, ref="p")
    transfers = [
        Transfer(f"b{i}", "bet", [Leg(wallet["cash"].pk, -60), Leg(provider.pk, 60)],
                 player.brand_id, player.pk)
        for i in range(2)
    ]  # fmt: skip
    with pytest.raises(InsufficientFunds), transaction.atomic():
        ledger.do_post_transfers_batch(transfers)
    assert _balance(wallet["cash"]) == 100
    assert not LedgerTransaction.objects.filter(idempotency_key__in=["b0", "b1"]).exists()


def test_reversal_points_at_the_original_once(player, house, fund):
    original = fund(player, 300)
    reversal = ledger.do_reverse_transaction(original.pk, description="wrong player")
    assert reversal.reverses_id == original.pk
    assert reversal.kind == LedgerTransaction.Kind.REVERSAL
    wallet = ledger.get_wallet(player, "EUR")
    assert _balance(wallet["cash"]) == 0
    with pytest.raises(AlreadyReversed), transaction.atomic():
        ledger.do_reverse_transaction(original.pk, idempotency_key="another-key")
    # the default key replays quietly
    assert ledger.do_reverse_transaction(original.pk).pk == reversal.pk


@pytest.mark.parametrize("statement", ["UPDATE {t} SET amount = amount + 1", "DELETE FROM {t}"])
def test_entries_are_append_only(player, fund, statement):
    fund(player, 100)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(t=LedgerEntry._meta.db_table))
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {LedgerTransaction._meta.db_table}")


def test_database_refuses_negative_player_balance_even_without_the_service(player, fund):
    fund(player, 100)
    wallet = ledger.get_wallet(player, "EUR")
    with pytest.raises(DatabaseError), transaction.atomic():
        Account.objects.filter(pk=wallet["cash"].pk).update(balance=-1)


def test_wallet_accounts_are_created_once(player):
    first = ledger.get_wallet(player, "EUR")
    second = ledger.get_wallet(player, "eur")
    assert {k: a.pk for k, a in first.items()} == {k: a.pk for k, a in second.items()}
    assert set(first) == {"cash", "bonus", "locked"}
    assert Account.objects.filter(player=player).count() == 3
