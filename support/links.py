"""Where tickets live in the UI (for links from the timeline, audit trail and search)."""

from backoffice.links import register_object_url

register_object_url("support.ticket", "support:ticket_detail")
