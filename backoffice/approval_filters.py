"""Filters of the four-eyes queue. The page shows pending requests unless asked otherwise."""

from __future__ import annotations

import django_filters
from django import forms

from .approval_selectors import decidable_actions
from .approvals import all_actions
from .audit_filters import style_filter_form
from .models import ApprovalRequest, Brand


def action_choices() -> list[tuple[str, str]]:
    return [(a.key, a.label) for a in all_actions()]


def _brands(request):
    if request is None:
        return Brand.objects.none()
    return Brand.objects.in_brands(request.user)


class CheckboxFilter(django_filters.BooleanFilter):
    """A tick box: ticked ("on" from a browser, "1" in a link) filters, unticked does not."""

    field_class = forms.BooleanField


class ApprovalRequestFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=ApprovalRequest.Status.choices, empty_label="Any status"
    )
    waiting = CheckboxFilter(
        method="filter_waiting",
        label="Waiting for me",
        help_text="Pending requests you may decide.",
    )
    action = django_filters.ChoiceFilter(choices=action_choices, empty_label="Any action")
    brand = django_filters.ModelChoiceFilter(
        queryset=_brands, empty_label="Any brand", null_label="No brand"
    )
    requested_by = django_filters.CharFilter(
        field_name="requested_by__username", label="Requester", help_text="A username, exactly."
    )

    class Meta:
        model = ApprovalRequest
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_filter_form(self.form)

    def filter_waiting(self, queryset, name, value):
        if not value:
            return queryset
        user = self.request.user
        return queryset.filter(
            status=ApprovalRequest.Status.PENDING, action__in=decidable_actions(user)
        ).exclude(requested_by=user)
