"""Default permissions of the seeded roles for support tickets.

Every team that tickets can be routed to works them (view, open, change, add notes); deciding
a dispute's outcome is Compliance's; macros are kept by Admin.
"""

from backoffice import roles
from backoffice.roles import grant, grant_view_all_to_auditor

WORK = ("support.view_ticket", "support.add_ticket", "support.change_ticket",
        "support.view_ticketnote", "support.add_ticketnote", "support.view_macro")  # fmt: skip

for _role in (roles.SUPPORT, roles.PAYMENTS, roles.RISK, roles.COMPLIANCE, roles.BONUS_MANAGER,
              roles.GAME_OPERATIONS):  # fmt: skip
    grant(_role, *WORK)
grant(roles.COMPLIANCE, "support.decide_dispute")
grant(roles.ADMIN, "support.view_macro", "support.add_macro", "support.change_macro")
grant_view_all_to_auditor("support.view_ticket", "support.view_ticketnote", "support.view_macro")
