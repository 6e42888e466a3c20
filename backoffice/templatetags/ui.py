"""Template helpers used on every page: money, status badges, relative times."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from backoffice.money import format_money
from backoffice.tables_speed import fast_format_html

register = template.Library()

_GOOD = {
    "active",
    "approved",
    "paid",
    "credited",
    "captured",
    "matched",
    "resolved",
    "verified",
    "success",
    "ok",
    "completed",
    "auto_pay",
    "enabled",
}
_BAD = {
    "failed",
    "rejected",
    "blocked",
    "charged_back",
    "chargeback",
    "declined",
    "expired",
    "suspended",
    "closed",
    "self_excluded",
    "error",
    "disabled",
    "manual",
    "mismatch",
    "amount_mismatch",
    "currency_mismatch",
    "status_mismatch",
    "missing_ours",
    "missing_psp",
    "duplicate",
    "high",
    "urgent",
}
_WAIT = {
    "pending",
    "requested",
    "in_review",
    "review",
    "initiated",
    "authorised",
    "sent_to_psp",
    "on_hold",
    "held",
    "new",
    "open",
    "pending_player",
    "pending_internal",
    "awaiting_approval",
    "unknown",
    "medium",
    "running",
    "queued",
}
_GREY = {"cancelled", "reversed", "refunded", "draft", "ended", "paused", "low", "normal"}


def badge_class(value: str) -> str:
    key = str(value).lower()
    if key in _GOOD:
        return "text-bg-success"
    if key in _BAD:
        return "text-bg-danger"
    if key in _WAIT:
        return "text-bg-warning"
    if key in _GREY:
        return "text-bg-secondary"
    return "text-bg-light border"


@register.simple_tag
def status_badge(value, label=None):
    """The one badge for a status, everywhere: colour plus the words (never colour alone)."""
    if value in (None, ""):
        return "—"
    text = label or str(value).replace("_", " ")
    return fast_format_html(  # drawn in every row of the lists: the lean format_html
        '<span class="badge {} status-badge" data-status="{}">{}</span>',
        badge_class(value),
        value,
        text,
    )


@register.filter
def money(minor, currency):
    """`{{ amount|money:currency }}` → "1,234.50 EUR" in a monospace, right-aligned span."""
    return format_html('<span class="money">{}</span>', format_money(minor, currency))


@register.simple_tag
def reltime(value: datetime | None):
    """ "3 h ago" with the exact UTC time on hover."""
    if not value:
        return "—"
    seconds = (timezone.now() - value).total_seconds()
    words = short_duration(abs(seconds))
    words = f"{words} ago" if seconds >= 0 else f"in {words}"
    exact = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return fast_format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, words
    )


_UNITS = ((365 * 86400, "y"), (30 * 86400, "mo"), (86400, "d"), (3600, "h"), (60, "min"))


def short_duration(seconds: float) -> str:
    """The largest whole unit: "3 h", "12 d", "45 s". Tables draw hundreds of these a page,
    so this is plain arithmetic rather than Django's translated `timesince`."""
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


@register.filter
def mono(value):
    return format_html('<span class="font-monospace">{}</span>', value)


@register.simple_tag(takes_context=True)
def table_rows(context, table):
    """The body rows of a django-tables2 table, drawn in one pass (see tables_speed)."""
    from backoffice.tables_speed import render_rows

    return render_rows(table, context)
