"""Template helpers of the player pages: links to timeline objects, kind labels."""

from django import template

from backoffice.links import object_url

from ..timeline import KINDS

register = template.Library()


@register.simple_tag
def timeline_link(event, player):
    """The URL of the event's object, unless it is the player the page is about."""
    if not event.object_type or (
        event.object_type == "players.player" and event.object_id == str(player.pk)
    ):
        return ""
    return object_url(event.object_type, event.object_id) or ""


@register.filter
def kind_label(kind: str) -> str:
    return KINDS.get(kind, kind.replace("_", " ").capitalize())


KIND_ICONS = {
    "account": "person-gear",
    "login": "box-arrow-in-right",
    "payment": "credit-card",
    "ledger": "journal-text",
    "game": "controller",
    "bonus": "gift",
    "kyc": "person-vcard",
    "aml": "shield-exclamation",
    "limits": "speedometer2",
    "ticket": "life-preserver",
    "note": "sticky",
    "staff": "person-badge",
}


@register.filter
def kind_icon(kind: str) -> str:
    return KIND_ICONS.get(kind, "dot")
