"""Filters of the audit trail page. Every filter maps to an indexed column or a short scan."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import lru_cache

import django_filters
from django import forms
from django.apps import apps
from django.conf import settings
from simple_history.models import HistoricalChanges

from .models import AuditEvent, Brand, User

OUR_APPS = settings.OUR_APPS


def style_filter_form(form: forms.Form) -> None:
    """Give a filter form's widgets Bootstrap's small controls (the list layout renders bare
    `{{ field }}`)."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, forms.Select):
            css = "form-select form-select-sm"
        else:
            css = "form-control form-control-sm"
        widget.attrs.setdefault("class", css)


@lru_cache(maxsize=1)
def object_type_choices() -> list[tuple[str, str]]:
    """Every model of our apps, as audit events name them (`app_label.modelname`)."""
    choices = []
    for model in apps.get_models():
        opts = model._meta
        if opts.app_label not in OUR_APPS or issubclass(model, HistoricalChanges):
            continue
        choices.append((opts.label_lower, f"{opts.verbose_name.capitalize()} ({opts.label_lower})"))
    return sorted(choices, key=lambda c: c[1])


def _brands(request):
    if request is None:
        return Brand.objects.none()
    return Brand.objects.in_brands(request.user)


def day_start(day) -> datetime:
    """Midnight UTC of `day`: date filters compare `occurred_at` with a range, so the index on
    it is used (a `__date` lookup would compute a date for every row)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


class DateRangeForm(forms.Form):
    """A filter form whose `since`/`until` pair must be in order."""

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "This day is before the “From” day; swap them.")
        return data


class AuditEventFilterSet(django_filters.FilterSet):
    """Who did what to which object, in which brand, when."""

    actor = django_filters.CharFilter(
        method="filter_actor",
        label="Actor",
        help_text="A username, 'system' or a PSP code, exactly.",
    )
    object_type = django_filters.ChoiceFilter(
        choices=object_type_choices, label="Object type", empty_label="Any type"
    )
    object_id = django_filters.CharFilter(label="Object id")
    action = django_filters.CharFilter(
        lookup_expr="startswith",
        label="Action",
        help_text="A full action or its start, e.g. approval.",
    )
    brand = django_filters.ModelChoiceFilter(
        queryset=_brands, label="Brand", empty_label="Any brand", null_label="No brand (staff)"
    )
    since = django_filters.DateFilter(
        method="filter_since",
        label="From (UTC day)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        method="filter_until",
        label="To (UTC day, included)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = DateRangeForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_filter_form(self.form)

    def filter_actor(self, queryset, name, value):
        # A member of staff is found by id (indexed with the event id, and right even if the
        # username changed since); anything else is a label such as "system" or a PSP code.
        user_id = User.objects.filter(username=value).values_list("pk", flat=True).first()
        if user_id is not None:
            return queryset.filter(actor_id=user_id)
        return queryset.filter(actor_label=value)

    def filter_since(self, queryset, name, value):
        return queryset.filter(occurred_at__gte=day_start(value))

    def filter_until(self, queryset, name, value):
        return queryset.filter(occurred_at__lt=day_start(value + timedelta(days=1)))

    def active_filters(self) -> dict[str, list[str]]:
        """The filters in use, as the query string gave them (for the export's audit event)."""
        if not self.is_bound:
            return {}
        return {
            name: [v for v in self.data.getlist(name) if v]
            for name in self.filters
            if any(self.data.getlist(name))
        }
