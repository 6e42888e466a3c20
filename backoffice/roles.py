"""The seeded roles and their default permissions.

Roles are Django groups, editable by admins in the role editor. This module holds the defaults
that `ensure_roles()` writes when a role does not exist yet (or on `--reset`). Each app adds its
own permissions in its `roles.py` with `grant("Support", "players.view_player", ...)`.
"""

from __future__ import annotations

SUPPORT = "Support"
PAYMENTS = "Payments"
RISK = "Risk"
COMPLIANCE = "Compliance"
BONUS_MANAGER = "Bonus manager"
GAME_OPERATIONS = "Game operations"
ADMIN = "Admin"
AUDITOR = "Auditor"

ROLES = [SUPPORT, PAYMENTS, RISK, COMPLIANCE, BONUS_MANAGER, GAME_OPERATIONS, ADMIN, AUDITOR]

ROLE_DESCRIPTIONS = {
    SUPPORT: "Works tickets; sees the whole player on one screen.",
    PAYMENTS: "Approves withdrawals, watches PSPs, reconciles settlement reports.",
    RISK: "Triages fraud alerts, holds withdrawals, suspends accounts.",
    COMPLIANCE: "Reviews KYC, works AML cases, applies RG actions, exports the audit trail.",
    BONUS_MANAGER: "Drafts and launches bonus campaigns.",
    GAME_OPERATIONS: "Manages providers, the game catalogue and availability.",
    ADMIN: "Manages staff accounts, roles and brand scopes.",
    AUDITOR: "Reads everything, changes nothing.",
}

ROLE_PERMISSIONS: dict[str, set[str]] = {role: set() for role in ROLES}


def grant(role: str, *perms: str) -> None:
    """Add default permissions ("app_label.codename") to a seeded role."""
    ROLE_PERMISSIONS[role].update(perms)


def grant_view_all_to_auditor(*perms: str) -> None:
    """Auditor reads everything: give it every `view_*` permission listed."""
    grant(AUDITOR, *[p for p in perms if p.split(".", 1)[1].startswith("view_")])


# The foundation's own defaults. Brand access is given per brand (object permission), except
# to Auditor and Admin who cover all brands.
grant(ADMIN, "backoffice.view_user", "backoffice.add_user", "backoffice.change_user",
      "auth.view_group", "auth.change_group", "auth.add_group", "backoffice.view_brand",
      "backoffice.change_brand", "backoffice.add_brand", "backoffice.access_brand",
      "backoffice.view_approvalrequest", "backoffice.decide_approvalrequest",
      "backoffice.view_auditevent")  # fmt: skip
grant(AUDITOR, "backoffice.view_auditevent", "backoffice.view_user", "auth.view_group",
      "backoffice.view_brand", "backoffice.view_approvalrequest", "backoffice.access_brand",
      "backoffice.export_auditevent")  # fmt: skip
grant(COMPLIANCE, "backoffice.view_auditevent", "backoffice.export_auditevent",
      "backoffice.view_approvalrequest", "backoffice.decide_approvalrequest",
      "backoffice.view_brand")  # fmt: skip
for _role in (SUPPORT, PAYMENTS, RISK, BONUS_MANAGER, GAME_OPERATIONS):
    grant(_role, "backoffice.view_approvalrequest", "backoffice.view_brand")
grant(PAYMENTS, "backoffice.decide_approvalrequest")
grant(RISK, "backoffice.decide_approvalrequest")
grant(BONUS_MANAGER, "backoffice.decide_approvalrequest")
