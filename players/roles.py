"""Default permissions of the seeded roles for the players app.

Suspending is first-line work (Support); blocking, closing and restrictions are Risk's and
Compliance's; self-exclusion is Compliance's; risk notes are read and written by Risk and
Compliance only (Auditor reads them). Admin keeps the vocabularies (tags, note reasons).
"""

from backoffice import roles
from backoffice.roles import grant, grant_view_all_to_auditor

VIEW = ("players.view_player", "players.view_playernote", "players.view_tag",
        "players.view_playertag")  # fmt: skip
WORK = ("players.add_playernote", "players.add_playertag", "players.delete_playertag")

grant(roles.SUPPORT, *VIEW, *WORK, "players.change_player_status")
grant(roles.PAYMENTS, *VIEW, *WORK, "players.change_player_restrictions")
grant(roles.RISK, *VIEW, *WORK, "players.change_player_status", "players.block_player",
      "players.close_player", "players.change_player_restrictions", "players.view_risk_notes",
      "players.add_tag")  # fmt: skip
grant(roles.COMPLIANCE, *VIEW, *WORK, "players.change_player_status", "players.block_player",
      "players.close_player", "players.self_exclude_player",
      "players.change_player_restrictions", "players.view_risk_notes",
      "players.add_tag")  # fmt: skip
grant(roles.BONUS_MANAGER, "players.view_player", "players.view_tag", "players.view_playertag")
grant(roles.GAME_OPERATIONS, "players.view_player")
grant(roles.ADMIN, "players.view_tag", "players.add_tag", "players.change_tag",
      "players.view_notereason")  # fmt: skip
grant_view_all_to_auditor(*VIEW, "players.view_risk_notes", "players.view_notereason")
