"""Filters of the payments lists. Each maps to an index (player, brand, status, PSP, created_at
on payments; account, player, BRIN created_at on entries) so lists stay fast at millions."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import django_filters
from django import forms
from django.db.models import Q

from backoffice.cached_choices import CachedModelChoiceFilter
from backoffice.forms import compact_widgets
from backoffice.models import Brand
from backoffice.money import exponent_for
from players.models import Player

from .models import (
    DEPOSIT_TRANSITIONS,
    WITHDRAWAL_TRANSITIONS,
    Account,
    Currency,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentKind,
    PaymentMethod,
    PaymentStatus,
    Psp,
    PspInboxEvent,
    PspWebhookRejection,
)
from .selectors import reference_q


def _day_start(value) -> datetime:
    return datetime.combine(value, time.min, tzinfo=UTC)


# The kinds a status can belong to (the `payment_status_matches_kind` check constraint).
_KINDS_OF_STATUS: dict[str, set[str]] = {}
for _kind, _transitions in (
    (PaymentKind.DEPOSIT, DEPOSIT_TRANSITIONS),
    (PaymentKind.WITHDRAWAL, WITHDRAWAL_TRANSITIONS),
):
    for _status in _transitions:
        _KINDS_OF_STATUS.setdefault(str(_status), set()).add(str(_kind))


class ScopedFilterSet(django_filters.FilterSet):
    """Brand and PSP choices narrowed to the user's brands; Bootstrap-sized widgets."""

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        if "brand" in self.filters:
            self.filters["brand"].queryset = (
                Brand.objects.in_brands(user) if user else Brand.objects.none()
            )
        if "psp" in self.filters:
            self.filters["psp"].queryset = (
                Psp.objects.in_brands(user) if user else Psp.objects.none()
            )
        compact_widgets(self.form)

    def filter_upper(self, queryset, name, value):
        return queryset.filter(**{name: value.strip().upper()})

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(**{f"{name}__gte": _day_start(value)})

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(**{f"{name}__lt": _day_start(value) + timedelta(days=1)})


def _date(label: str, method: str, field: str = "created_at"):
    return django_filters.DateFilter(
        field_name=field, method=method, label=label,
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip


class PaymentFilterSet(ScopedFilterSet):
    q = django_filters.CharFilter(
        method="filter_q", label="Reference",
        widget=forms.TextInput(attrs={"placeholder": "Our or the PSP's reference"}),
    )  # fmt: skip
    player = django_filters.CharFilter(
        method="filter_player", label="Player",
        widget=forms.TextInput(attrs={"placeholder": "Id, username or platform reference"}),
    )  # fmt: skip
    brand = CachedModelChoiceFilter(queryset=Brand.objects.none())
    kind = django_filters.ChoiceFilter(choices=PaymentKind.choices)
    status = django_filters.MultipleChoiceFilter(
        choices=PaymentStatus.choices, method="filter_status"
    )
    psp = CachedModelChoiceFilter(queryset=Psp.objects.none(), label="PSP")
    method = django_filters.ChoiceFilter(
        field_name="method_kind", choices=PaymentMethod.Kind.choices, label="Method"
    )
    country = django_filters.CharFilter(
        method="filter_upper", label="Country",
        widget=forms.TextInput(attrs={"placeholder": "e.g. MT", "maxlength": 2}),
    )  # fmt: skip
    currency = CachedModelChoiceFilter(queryset=Currency.objects.all())
    amount_min = django_filters.NumberFilter(
        method="filter_amount", label="Amount from", min_value=0,
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "e.g. 100"}),
    )  # fmt: skip
    amount_max = django_filters.NumberFilter(
        method="filter_amount", label="Amount to", min_value=0,
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "e.g. 2500"}),
    )  # fmt: skip
    created_from = _date("From", "filter_date_from")
    created_to = _date("To", "filter_date_to")

    class Meta:
        model = Payment
        fields: list[str] = []

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # The PSP reference is unique per PSP: `reference_q` names every PSP so PostgreSQL
        # probes the (psp, psp_reference) index once per PSP instead of reading all of it.
        return queryset.filter(reference_q(value))

    def filter_status(self, queryset, name, value):
        """Statuses of one kind only (all but "failed") also name that kind: the same rows
        (the `payment_status_matches_kind` check), and PostgreSQL can then walk that kind's
        index newest first instead of the primary key past every payment of the other kind."""
        if not value:
            return queryset
        queryset = queryset.filter(status__in=value)
        kinds = {kind for s in value for kind in _KINDS_OF_STATUS.get(s, ())}
        return queryset.filter(kind=kinds.pop()) if len(kinds) == 1 else queryset

    def filter_player(self, queryset, name, value):
        """The few matching players first (their unique indexes), then their payments through
        the (player, -id) index, rather than an OR across a join."""
        value = value.strip()
        if not value:
            return queryset
        match = Q(username=value) | Q(external_ref=value)
        if value.isdigit() and len(value) < 19:
            match |= Q(pk=int(value))
        return queryset.filter(player_id__in=Player.objects.filter(match).values("pk")[:50])

    def filter_amount(self, queryset, name, value):
        """Amounts are typed in major units; each currency converts with its own exponent, so
        "from 100" means 100.00 EUR and 100 JPY alike."""
        major = Decimal(value)
        lookup = "amount__gte" if name == "amount_min" else "amount__lte"
        chosen = self.form.cleaned_data.get("currency")
        if chosen:
            codes = [chosen.code]
        else:
            if not hasattr(self, "_codes"):  # amount_min and amount_max share one query
                self._codes = list(Currency.objects.values_list("code", flat=True))
            codes = self._codes
        by_exponent: dict[int, list[str]] = {}
        for code in codes:
            by_exponent.setdefault(exponent_for(code), []).append(code)
        q = Q()
        for exponent, group in by_exponent.items():
            minor = int(major.scaleb(exponent).to_integral_value())
            q |= Q(currency_id__in=group, **{lookup: minor})
        return queryset.filter(q)


class LedgerEntryFilterSet(ScopedFilterSet):
    brand = CachedModelChoiceFilter(queryset=Brand.objects.none())
    player = django_filters.NumberFilter(field_name="player_id", label="Player id")
    account = django_filters.NumberFilter(field_name="account_id", label="Account id")
    transaction = django_filters.NumberFilter(field_name="transaction_id", label="Transaction id")
    account_kind = django_filters.ChoiceFilter(
        field_name="account__kind", choices=Account.Kind.choices, label="Account kind"
    )
    transaction_kind = django_filters.ChoiceFilter(
        field_name="transaction__kind",
        choices=LedgerTransaction.Kind.choices,
        label="Transaction kind",
    )
    currency = CachedModelChoiceFilter(queryset=Currency.objects.all())
    created_from = _date("From", "filter_date_from")
    created_to = _date("To", "filter_date_to")

    class Meta:
        model = LedgerEntry
        fields: list[str] = []


class AccountFilterSet(ScopedFilterSet):
    brand = CachedModelChoiceFilter(queryset=Brand.objects.none())
    owner = django_filters.ChoiceFilter(
        choices=[("house", "House accounts"), ("player", "Player wallets")],
        method="filter_owner", label="Owner",
    )  # fmt: skip
    kind = django_filters.ChoiceFilter(choices=Account.Kind.choices)
    currency = CachedModelChoiceFilter(queryset=Currency.objects.all())
    player = django_filters.NumberFilter(field_name="player_id", label="Player id")

    class Meta:
        model = Account
        fields: list[str] = []

    def filter_owner(self, queryset, name, value):
        return queryset.filter(player__isnull=value == "house")


class PaymentMethodFilterSet(ScopedFilterSet):
    brand = CachedModelChoiceFilter(queryset=Brand.objects.none())
    psp = CachedModelChoiceFilter(queryset=Psp.objects.none(), label="PSP")
    kind = django_filters.ChoiceFilter(choices=PaymentMethod.Kind.choices, label="Method")
    currency = CachedModelChoiceFilter(queryset=Currency.objects.all())
    enabled = django_filters.ChoiceFilter(
        choices=[("on", "On"), ("off", "Off")], method="filter_enabled", label="State"
    )

    class Meta:
        model = PaymentMethod
        fields: list[str] = []

    def filter_enabled(self, queryset, name, value):
        on = Q(is_enabled=True, psp__is_enabled=True)
        return queryset.filter(on) if value == "on" else queryset.exclude(on)


class PspEventFilterSet(ScopedFilterSet):
    psp = CachedModelChoiceFilter(queryset=Psp.objects.none(), label="PSP")
    status = django_filters.MultipleChoiceFilter(choices=PspInboxEvent.Status.choices)
    reference = django_filters.CharFilter(field_name="psp_reference", label="PSP reference")
    event = django_filters.CharFilter(field_name="event_id", label="Event id")
    received_from = _date("From", "filter_date_from", "received_at")
    received_to = _date("To", "filter_date_to", "received_at")

    class Meta:
        model = PspInboxEvent
        fields: list[str] = []


class RejectionFilterSet(ScopedFilterSet):
    psp_code = django_filters.CharFilter(label="PSP code")
    reason = django_filters.MultipleChoiceFilter(choices=PspWebhookRejection.Reason.choices)
    received_from = _date("From", "filter_date_from", "received_at")
    received_to = _date("To", "filter_date_to", "received_at")

    class Meta:
        model = PspWebhookRejection
        fields: list[str] = []
