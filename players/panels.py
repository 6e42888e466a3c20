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
