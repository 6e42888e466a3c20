"""The side menu. Each item names a URL and the permission that shows it.

Items whose URL name does not exist yet are left out, so an app's pages appear in the menu as
soon as its `urls.py` defines the name listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    permission: str | None
    icon: str = "dot"


MENU: list[tuple[str, list[MenuItem]]] = [
    (
        "Players",
        [
            MenuItem("Players", "players:player_list", "players.view_player", "people"),
            MenuItem("Tickets", "support:ticket_list", "support.view_ticket", "life-preserver"),
        ],
    ),
    (
        "Payments",
        [
            MenuItem(
                "Transactions", "payments:transaction_list", "payments.view_deposit", "cash-stack"
            ),
            MenuItem(
                "Withdrawal queue",
                "payments:withdrawal_queue",
                "payments.view_withdrawal",
                "hourglass-split",
            ),
            MenuItem(
                "Reconciliation",
                "payments:reconciliation_list",
                "payments.view_settlementreport",
                "check2-square",
            ),
            MenuItem("Ledger", "payments:entry_list", "payments.view_ledgerentry", "journal"),
            MenuItem("PSPs", "payments:psp_list", "payments.view_psp", "bank"),
        ],
    ),
    (
        "Compliance",
        [
            MenuItem(
                "KYC review", "compliance:document_queue", "compliance.view_document", "id-card"
            ),
            MenuItem(
                "AML cases", "compliance:case_list", "compliance.view_amlcase", "shield-exclamation"
            ),
        ],
    ),
    (
        "Games & bonuses",
        [
            MenuItem("Campaigns", "bonuses:campaign_list", "bonuses.view_campaign", "gift"),
            MenuItem("Games", "games:game_list", "games.view_game", "controller"),
        ],
    ),
    (
        "Reporting",
        [MenuItem("Dashboards", "reporting:overview", "reporting.view_report", "graph-up")],
    ),
    (
        "Administration",
        [
            MenuItem(
                "Approvals",
                "backoffice:approval_list",
                "backoffice.view_approvalrequest",
                "people-fill",
            ),
            MenuItem(
                "Audit trail", "backoffice:audit_list", "backoffice.view_auditevent", "journal-text"
            ),
            MenuItem("Staff", "backoffice:staff_list", "backoffice.view_user", "person-badge"),
            MenuItem("Roles", "backoffice:role_list", "auth.view_group", "diagram-3"),
            MenuItem("Brands", "backoffice:brand_list", "backoffice.view_brand", "shop"),
            MenuItem("Player tags", "players:tag_list", "players.change_tag", "tags"),
            MenuItem("Ticket macros", "support:macro_list", "support.change_macro", "chat-text"),
        ],
    ),
]


def menu_for(user) -> list[tuple[str, list[tuple[MenuItem, str]]]]:
    """The menu sections and (item, url) pairs `user` may use; empty sections dropped."""
    sections = []
    for title, items in MENU:
        visible = []
        for item in items:
            if item.permission and not user.has_perm(item.permission):
                continue
            try:
                visible.append((item, reverse(item.url_name)))
            except NoReverseMatch:
                continue
        if visible:
            sections.append((title, visible))
    return sections
