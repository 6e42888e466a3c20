"""Tables of the payments pages. Only `id` sorts (the primary key index), so no sort scans."""

from __future__ import annotations

from functools import lru_cache

import django_tables2 as tables
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html

from backoffice.tables_speed import fast_format_html
from backoffice.templatetags.ui import money, reltime, status_badge

from .models import (
    Account,
    LedgerEntry,
    Payment,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    PspInboxEvent,
    PspWebhookRejection,
)

TABLE_ATTRS = {"class": "table table-sm table-hover align-middle", "data-keyboard-rows": ""}
MONEY_ATTRS = {"th": {"class": "text-end"}, "td": {"class": "text-end text-nowrap"}}


# Labels looked up once, not through get_FOO_display (which rebuilds a dict) in every row.
_KIND_LABELS = dict(PaymentKind.choices)
_STATUS_LABELS = dict(PaymentStatus.choices)
_METHOD_LABELS = dict(PaymentMethod.Kind.choices)
_SENTINEL = 7_391_028_374_651  # an id no player has: where the id goes in the player URL


@lru_cache(maxsize=8)
def _player_url_parts(script_prefix: str, urlconf) -> tuple[str, str] | None:
    """The player page URL around its id, reversed once per URL setup (not once a row)."""
    try:
        url = reverse("players:player_detail", kwargs={"pk": _SENTINEL})
    except Exception:  # noqa: BLE001 - the players pages may not be mounted (a slim install)
        return None
    before, _, after = url.partition(str(_SENTINEL))
    return before, after


def _player_link(player_id, label=None):
    if not player_id:
        return "—"
    parts = _player_url_parts(get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    if parts is None:
        return format_html('<span class="font-monospace">#{}</span>', player_id)
    url = f"{parts[0]}{int(player_id)}{parts[1]}"
    return fast_format_html('<a href="{}">{}</a>', url, label or f"#{player_id}")


class PaymentTable(tables.Table):
    id = tables.Column(
        verbose_name="Id", linkify=("payments:transaction_detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "font-monospace"}},
    )  # fmt: skip
    created_at = tables.Column(verbose_name="Created", orderable=False)
    kind = tables.Column(orderable=False)
    player = tables.Column(accessor="player_id", verbose_name="Player", orderable=False)
    brand = tables.Column(accessor="brand__name", verbose_name="Brand", orderable=False)
    amount = tables.Column(orderable=False, attrs=MONEY_ATTRS)
    status = tables.Column(orderable=False)
    psp = tables.Column(accessor="psp__name", verbose_name="PSP", orderable=False)
    method_kind = tables.Column(verbose_name="Method", orderable=False)
    country = tables.Column(orderable=False)
    reference = tables.Column(orderable=False, attrs={"td": {"class": "font-monospace small"}})

    class Meta:
        model = Payment
        fields = ()
        sequence = (
            "id", "created_at", "kind", "player", "brand", "amount", "status", "psp",
            "method_kind", "country", "reference",
        )  # fmt: skip
        order_by = ("-id",)
        attrs = TABLE_ATTRS
        empty_text = (
            "No deposit or withdrawal matches these filters in the brands you cover. "
            "Widen the dates or clear a filter."
        )

    def render_created_at(self, value):
        return reltime(value)

    def render_kind(self, value):
        return str(_KIND_LABELS.get(value, value))

    def render_player(self, value, record):
        return _player_link(value, record.player.username)

    def render_amount(self, value, record):
        return money(value, record.currency_id)

    def render_status(self, value):
        return status_badge(value, str(_STATUS_LABELS.get(value, value)))

    def render_method_kind(self, value):
        return _METHOD_LABELS.get(value, value)


class LedgerEntryTable(tables.Table):
    id = tables.Column(verbose_name="Id", attrs={"td": {"class": "font-monospace"}})
    created_at = tables.Column(verbose_name="When", orderable=False)
    transaction = tables.Column(
        accessor="transaction_id", verbose_name="Transaction", orderable=False,
        linkify=("payments:ledger_transaction_detail", {"pk": tables.A("transaction_id")}),
        attrs={"td": {"class": "font-monospace"}},
    )  # fmt: skip
    kind = tables.Column(accessor="transaction__kind", verbose_name="Kind", orderable=False)
    account = tables.Column(accessor="account_id", verbose_name="Account", orderable=False)
    player = tables.Column(accessor="player_id", verbose_name="Player", orderable=False)
    amount = tables.Column(orderable=False, attrs=MONEY_ATTRS)
    balance_after = tables.Column(verbose_name="Balance after", orderable=False, attrs=MONEY_ATTRS)

    class Meta:
        model = LedgerEntry
        fields = ()
        sequence = (
            "id", "created_at", "transaction", "kind", "account", "player", "amount",
            "balance_after",
        )  # fmt: skip
        order_by = ("-id",)
        attrs = TABLE_ATTRS
        empty_text = "No ledger entry matches these filters in the brands you cover."

    def render_created_at(self, value):
        return reltime(value)

    def render_kind(self, record):
        return record.transaction.get_kind_display()

    def render_account(self, record):
        return str(record.account)

    def render_player(self, value):
        return _player_link(value)

    def render_amount(self, value, record):
        return money(value, record.currency_id)

    def render_balance_after(self, value, record):
        return money(value, record.currency_id)


class AccountTable(tables.Table):
    id = tables.Column(verbose_name="Id", attrs={"td": {"class": "font-monospace"}})
    brand = tables.Column(accessor="brand__name", verbose_name="Brand", orderable=False)
    kind = tables.Column(orderable=False)
    ref = tables.Column(verbose_name="PSP / provider", orderable=False)
    player = tables.Column(accessor="player_id", verbose_name="Player", orderable=False)
    currency = tables.Column(accessor="currency_id", verbose_name="Currency", orderable=False)
    balance = tables.Column(orderable=False, attrs=MONEY_ATTRS)
    statement = tables.Column(accessor="pk", verbose_name="", orderable=False)

    class Meta:
        model = Account
        fields = ()
        sequence = ("id", "brand", "kind", "ref", "player", "currency", "balance", "statement")
        order_by = ("id",)
        attrs = TABLE_ATTRS
        empty_text = "No account matches these filters in the brands you cover."

    def render_kind(self, record):
        return record.get_kind_display()

    def render_player(self, value):
        return _player_link(value)

    def render_balance(self, value, record):
        return money(value, record.currency_id)

    def render_statement(self, value):
        url = reverse("payments:entry_list")
        return format_html('<a class="small" href="{}?account={}">Entries</a>', url, value)


class PaymentMethodTable(tables.Table):
    psp = tables.Column(accessor="psp__name", verbose_name="PSP", orderable=False)
    psp_state = tables.Column(accessor="psp__is_enabled", verbose_name="PSP state", orderable=False)
    kind = tables.Column(verbose_name="Method", orderable=False)
    country = tables.Column(orderable=False)
    currency = tables.Column(accessor="currency_id", verbose_name="Currency", orderable=False)
    directions = tables.Column(accessor="pk", verbose_name="Takes", orderable=False)
    limits = tables.Column(accessor="pk", verbose_name="Limits", orderable=False)
    state = tables.Column(accessor="is_enabled", verbose_name="Method state", orderable=False)

    class Meta:
        model = PaymentMethod
        fields = ()
        sequence = (
            "psp", "psp_state", "kind", "country", "currency", "directions", "limits", "state",
        )  # fmt: skip
        order_by = ("psp__name",)
        attrs = TABLE_ATTRS
        empty_text = "No payment method is configured for the brands you cover."

    def __init__(self, *args, can_switch: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_switch = can_switch

    def _switch(self, url_name, pk, enabled, reason):
        badge = status_badge("enabled" if enabled else "disabled", "on" if enabled else "off")
        why = (
            format_html(' <span class="small text-body-secondary">{}</span>', reason)
            if reason
            else ""
        )
        if not self.can_switch:
            return format_html("{}{}", badge, why)
        url = reverse(url_name, kwargs={"pk": pk})
        verb = "Switch off" if enabled else "Switch on"
        return format_html('{}{} <a class="small ms-1" href="{}">{}</a>', badge, why, url, verb)

    def render_psp_state(self, record):
        psp = record.psp
        return self._switch("payments:psp_switch", psp.pk, psp.is_enabled, psp.status_reason)

    def render_state(self, record):
        return self._switch(
            "payments:method_switch", record.pk, record.is_enabled, record.status_reason
        )

    def render_kind(self, record):
        return record.get_kind_display()

    def render_country(self, value):
        return value or "All"

    def render_directions(self, record):
        parts = [
            label
            for flag, label in (
                (record.supports_deposits, "deposits"),
                (record.supports_withdrawals, "payouts"),
            )
            if flag
        ]
        return ", ".join(parts) or "—"

    def render_limits(self, record):
        if record.min_amount is None and record.max_amount is None:
            return "—"
        low = money(record.min_amount, record.currency_id) if record.min_amount is not None else "0"
        high = (
            money(record.max_amount, record.currency_id) if record.max_amount is not None else "∞"
        )
        return format_html("{} – {}", low, high)


class PspEventTable(tables.Table):
    id = tables.Column(verbose_name="Id", attrs={"td": {"class": "font-monospace"}})
    received_at = tables.Column(verbose_name="Received", orderable=False)
    psp = tables.Column(accessor="psp__name", verbose_name="PSP", orderable=False)
    event_id = tables.Column(verbose_name="Event id", orderable=False,
                             attrs={"td": {"class": "font-monospace small"}})  # fmt: skip
    event_type = tables.Column(verbose_name="Type", orderable=False)
    psp_reference = tables.Column(verbose_name="PSP reference", orderable=False,
                                  attrs={"td": {"class": "font-monospace small"}})  # fmt: skip
    status = tables.Column(orderable=False)
    result = tables.Column(orderable=False, attrs={"td": {"class": "small"}})
    payment = tables.Column(
        accessor="payment_id", verbose_name="Payment", orderable=False,
        linkify=("payments:transaction_detail", {"pk": tables.A("payment_id")}),
    )  # fmt: skip

    class Meta:
        model = PspInboxEvent
        fields = ()
        sequence = (
            "id", "received_at", "psp", "event_id", "event_type", "psp_reference", "status",
            "result", "payment",
        )  # fmt: skip
        order_by = ("-id",)
        attrs = TABLE_ATTRS
        empty_text = "No PSP callback matches these filters."

    def render_received_at(self, value):
        return reltime(value)

    def render_status(self, value, record):
        return status_badge(value, record.get_status_display())


class RejectionTable(tables.Table):
    id = tables.Column(verbose_name="Id", attrs={"td": {"class": "font-monospace"}})
    received_at = tables.Column(verbose_name="Received", orderable=False)
    psp_code = tables.Column(verbose_name="PSP code", orderable=False)
    reason = tables.Column(orderable=False)
    detail = tables.Column(orderable=False, attrs={"td": {"class": "small"}})
    remote_addr = tables.Column(verbose_name="From", orderable=False,
                                attrs={"td": {"class": "font-monospace small"}})  # fmt: skip

    class Meta:
        model = PspWebhookRejection
        fields = ()
        sequence = ("id", "received_at", "psp_code", "reason", "detail", "remote_addr")
        order_by = ("-id",)
        attrs = TABLE_ATTRS
        empty_text = "No webhook has been refused. Refusals (bad or stale signatures) show here."

    def render_received_at(self, value):
        return reltime(value)

    def render_reason(self, value, record):
        return status_badge("error", record.get_reason_display())
