"""Permission-matrix cases for the players pages (/players/).

Who may do what (from `players/roles.py`): every role but Admin sees players (Auditor read
only); suspending is Support's, Risk's and Compliance's; restrictions Payments', Risk's and
Compliance's; notes and tags every working role's; the tag vocabulary is kept by Admin (Risk
and Compliance may add tags).
"""

from __future__ import annotations

from types import SimpleNamespace

from tests.matrix import Case

VIEWERS = frozenset(
    {"Support", "Payments", "Risk", "Compliance", "Bonus manager", "Game operations", "Auditor"}
)
STATUS = frozenset({"Support", "Risk", "Compliance"})
RESTRICTIONS = frozenset({"Payments", "Risk", "Compliance"})
WORKERS = frozenset({"Support", "Payments", "Risk", "Compliance"})
TAG_READERS = frozenset(
    {"Support", "Payments", "Risk", "Compliance", "Bonus manager", "Admin", "Auditor"}
)


def build(world: SimpleNamespace) -> None:
    from players.defaults import ensure_note_reasons
    from players.services import do_record_login
    from tests.factories import PlayerFactory
    from tests.factories.players import TagFactory

    world.player = PlayerFactory(brand=world.brand_a, username="matrix-player")
    world.player_twin = PlayerFactory(brand=world.brand_a, username="matrix-twin")
    do_record_login(world.player, ip="10.9.9.9", device_id="matrix-device")
    do_record_login(world.player_twin, ip="10.9.9.9", device_id="matrix-device")
    world.tag = TagFactory(name="matrix-tag")
    world.note_reason = ensure_note_reasons()["contact"]


def _player(world):
    return {"pk": world.player.pk}


CASES = [
    Case("players:player_list", allowed=VIEWERS, query="?q=matrix&status=active"),
    Case("players:player_detail", allowed=VIEWERS, kwargs=_player, scoped=True),
    Case("players:player_timeline", allowed=VIEWERS, kwargs=_player, scoped=True,
         query="?kind=account&kind=note"),
    Case("players:player_status", allowed=STATUS, kwargs=_player, scoped=True, post=True,
         post_data={"status": "suspended", "reason": "Permission matrix"}),
    Case("players:player_restrictions", allowed=RESTRICTIONS, kwargs=_player, scoped=True,
         post=True, post_data={"block_bonuses": "on", "reason": "Permission matrix"}),
    Case("players:player_note_add", allowed=WORKERS, kwargs=_player, scoped=True, post=True,
         post_data=lambda w: {"reason": w.note_reason.pk, "body": "Permission matrix"}),
    Case("players:player_tags", allowed=WORKERS, kwargs=_player, scoped=True, post=True,
         post_data=lambda w: {"tag": w.tag.pk}),
    Case("players:tag_list", allowed=TAG_READERS),
    Case("players:tag_create", allowed={"Risk", "Compliance", "Admin"}, post=True,
         post_data={"name": "matrix-new", "colour": "info"}),
    Case("players:tag_update", allowed={"Admin"}, kwargs=lambda w: {"pk": w.tag.pk}, post=True,
         post_data={"name": "matrix-renamed", "description": "", "colour": "danger"}),
]  # fmt: skip
