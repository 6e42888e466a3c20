"""The player list's filters. Every filter is an indexed equality or range, or the search box's
exact/prefix matcher (see `selectors.player_search_q`), so the list stays fast at millions."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q

from backoffice.cached_choices import CachedModelChoiceFilter
from backoffice.models import Brand

from .forms import BootstrapMixin
from .models import Player, PlayerTag, Tag
from .selectors import search_players

KYC_LEVELS = [(0, "0 · none"), (1, "1 · identity"), (2, "2 · address"), (3, "3 · source of funds")]
RESTRICTION_CHOICES = [
    ("any", "Any restriction"),
    ("none", "No restriction"),
    *[(field, label) for field, label in Player.RESTRICTIONS.items()],
]


def _day_start(value) -> datetime:
    return datetime.combine(value, time.min, tzinfo=UTC)


class FilterForm(BootstrapMixin, forms.Form):
    """Small controls: filters sit in a narrow column."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            css = field.widget.attrs["class"]
            field.widget.attrs["class"] = css.replace("form-select", "form-select form-select-sm")
            if "form-control" in css:
                field.widget.attrs["class"] = css + " form-control-sm"


class PlayerFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Search", method="filter_q",
        widget=forms.TextInput(attrs={"placeholder": "Id, username, email, phone, name"}),
    )  # fmt: skip
    brand = CachedModelChoiceFilter(queryset=Brand.objects.none())
    status = django_filters.MultipleChoiceFilter(choices=Player.Status.choices)
    country = django_filters.CharFilter(
        method="filter_upper", label="Country",
        widget=forms.TextInput(attrs={"placeholder": "e.g. MT", "maxlength": 2}),
    )  # fmt: skip
    currency = django_filters.CharFilter(
        method="filter_upper", label="Currency",
        widget=forms.TextInput(attrs={"placeholder": "e.g. EUR", "maxlength": 8}),
    )  # fmt: skip
    kyc_level = django_filters.TypedChoiceFilter(choices=KYC_LEVELS, coerce=int, label="KYC level")
    tag = CachedModelChoiceFilter(queryset=Tag.objects.all(), method="filter_tag")
    restriction = django_filters.ChoiceFilter(
        choices=RESTRICTION_CHOICES, method="filter_restriction"
    )
    registered_from = django_filters.DateFilter(
        method="filter_from", field_name="registered_at", label="Registered from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    registered_to = django_filters.DateFilter(
        method="filter_to", field_name="registered_at", label="Registered to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    active_from = django_filters.DateFilter(
        method="filter_from", field_name="last_activity_at", label="Last active from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    active_to = django_filters.DateFilter(
        method="filter_to", field_name="last_activity_at", label="Last active to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip

    class Meta:
        model = Player
        fields: list[str] = []
        form = FilterForm

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        if request is not None:
            self.filters["brand"].queryset = Brand.objects.in_brands(request.user)

    def filter_q(self, queryset, name, value):
        return search_players(queryset, value) if value.strip() else queryset

    def filter_upper(self, queryset, name, value):
        value = value.strip().upper()
        return queryset.filter(**{name: value}) if value else queryset

    def filter_tag(self, queryset, name, value):
        return queryset.filter(
            Exists(PlayerTag.objects.filter(player_id=OuterRef("pk"), tag=value))
        )

    def filter_restriction(self, queryset, name, value):
        fields = list(Player.RESTRICTIONS)
        if value == "none":
            return queryset.filter(**dict.fromkeys(fields, False))
        if value == "any":
            cond = Q()
            for field in fields:
                cond |= Q(**{field: True})
            return queryset.filter(cond)
        return queryset.filter(**{value: True})

    def filter_from(self, queryset, name, value):
        return queryset.filter(**{f"{name}__gte": _day_start(value)})

    def filter_to(self, queryset, name, value):
        return queryset.filter(**{f"{name}__lt": _day_start(value) + timedelta(days=1)})


class TagFilterSet(django_filters.FilterSet):
    """The tag vocabulary is small (tens of rows): a contains match is fine here."""

    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")

    class Meta:
        model = Tag
        fields: list[str] = []
        form = FilterForm
