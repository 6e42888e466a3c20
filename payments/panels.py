"""The payments panels of the player page: the wallet (balances by currency and kind, recent
movements, adjustments waiting for approval) and the payments with their "where is my money"
line; a balance in the page header and an "Adjust balance" action."""

from __future__ import annotations

from django.utils.html import format_html

from backoffice.money import format_money
from players.panels import (
    HeaderItem,
    PlayerAction,
    PlayerPanel,
    register_header_item,
    register_panel,
    register_player_action,
)

from . import selectors


def _wallet(player, user) -> dict:
    return {
        "wallet": selectors.wallet_rows(player),
        "movements": selectors.recent_movements(player),
        "pending": selectors.pending_adjustments_for(player),
        "can_adjust": user.has_perm("payments.request_adjustment"),
        "can_see_ledger": user.has_perm("payments.view_ledgerentry"),
    }


def _payments(player, user) -> dict:
    payments = selectors.recent_payments(player, user)
    return {"payments": [(p, selectors.where_is_the_money(p)) for p in payments]}


def _balance(player, user):
    rows = selectors.wallet_rows(player)
    if not rows:
        return format_html('<span class="text-body-secondary">{}</span>', "No wallet yet")
    main = rows[0]
    locked = ""
    if main.locked:
        locked = format_html(
            ' <span class="small text-body-secondary">({} locked)</span>',
            format_money(main.locked, main.currency),
        )
    return format_html(
        '<span class="money">{}</span>{}',
        format_money(main.cash + main.bonus, main.currency),
        locked,
    )


register_panel(
    PlayerPanel(
        key="wallet",
        title="Wallet",
        template="payments/partials/_player_wallet.html",
        permission="payments.view_account",
        context=_wallet,
        order=20,
    )
)
register_panel(
    PlayerPanel(
        key="payments",
        title="Payments",
        template="payments/partials/_player_payments.html",
        permission="payments.view_deposit",
        context=_payments,
        order=25,
    )
)
register_header_item(
    HeaderItem(
        key="balance",
        label="Balance",
        permission="payments.view_account",
        value=_balance,
        order=10,
    )
)
register_player_action(
    PlayerAction(
        key="adjust_balance",
        label="Adjust balance",
        url_name="payments:adjustment_create",
        permission="payments.request_adjustment",
        icon="plus-slash-minus",
        order=50,
    )
)
