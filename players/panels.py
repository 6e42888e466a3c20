"""Panels of the player page. Each app registers the panels it owns in its `panels.py`:

    register_panel(PlayerPanel(
        key="wallet", title="Wallet", template="payments/partials/_player_wallet.html",
        permission="payments.view_account", context=wallet_context, order=20,
    ))

`context(player, user) -> dict` returns what the template needs; it must run a bounded number
of queries whatever the player's history. A panel is shown only to users with its permission.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlayerPanel:
    key: str
    title: str
    template: str
    permission: str | None
    context: Callable[..., dict[str, Any]]
    order: int = 100
    column: str = "main"  # "main" (wide) or "side"


_PANELS: dict[str, PlayerPanel] = {}


def register_panel(panel: PlayerPanel) -> PlayerPanel:
    _PANELS[panel.key] = panel
    return panel


def panels_for(user) -> list[PlayerPanel]:
    return [
        p
        for p in sorted(_PANELS.values(), key=lambda p: (p.order, p.key))
        if p.permission is None or user.has_perm(p.permission)
    ]


# --------------------------------------------------------------------------------------------
# Header facts and actions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderItem:
    """A fact in the player page's header (balances, open tickets, limits, open alerts…).

    `value(player, user)` returns text or safe HTML, or None to show nothing; it must run a
    bounded number of queries. Register it in the owning app's `panels.py`:

        register_header_item(HeaderItem(
            key="balance", label="Balance", permission="payments.view_account",
            value=lambda player, user: format_html(...), order=10,
        ))
    """

    key: str
    label: str
    permission: str | None
    value: Callable[..., Any]
    order: int = 100


@dataclass(frozen=True)
class PlayerAction:
    """A button in the player page's action bar, linking to `url_name` (which takes `pk`).

    Users without `permission` see the action disabled, with the roles to escalate to.
    """

    key: str
    label: str
    url_name: str
    permission: str
    icon: str = "lightning"
    order: int = 100
    query: str = ""


_HEADER_ITEMS: dict[str, HeaderItem] = {}
_ACTIONS: dict[str, PlayerAction] = {}


def register_header_item(item: HeaderItem) -> HeaderItem:
    _HEADER_ITEMS[item.key] = item
    return item


def header_items_for(user) -> list[HeaderItem]:
    return [
        h
        for h in sorted(_HEADER_ITEMS.values(), key=lambda h: (h.order, h.key))
        if h.permission is None or user.has_perm(h.permission)
    ]


def register_player_action(action: PlayerAction) -> PlayerAction:
    _ACTIONS[action.key] = action
    return action


def player_actions() -> list[PlayerAction]:
    return sorted(_ACTIONS.values(), key=lambda a: (a.order, a.key))
