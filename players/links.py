"""Where players live in the UI (for links from the timeline, audit trail and search)."""

from backoffice.links import register_object_url

register_object_url("players.player", "players:player_detail")
