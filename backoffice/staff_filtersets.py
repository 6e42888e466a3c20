"""Filters of the staff, role and brand lists (in the query string, so they can be shared)."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth.models import Group
from django.db.models import Q

from .models import Brand, User
from .staff_selectors import users_with_brand


def _brands_for_request(request):
    if request is None:
        return Brand.objects.none()
    return Brand.objects.in_brands(request.user).order_by("name")


class SearchFilter(django_filters.CharFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label", "Search")
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "search"}))
        super().__init__(*args, **kwargs)


class _Styled(django_filters.FilterSet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.form.fields.values():
            small = (
                "form-select form-select-sm"
                if isinstance(field.widget, forms.Select)
                else ("form-control form-control-sm")
            )
            field.widget.attrs.setdefault("class", small)


class StaffFilterSet(_Styled):
    q = SearchFilter(method="search", help_text="Id, username, email or name")
    role = django_filters.ModelChoiceFilter(
        field_name="groups",
        queryset=Group.objects.order_by("name"),
        label="Role",
        empty_label="Any",
    )
    brand = django_filters.ModelChoiceFilter(
        queryset=_brands_for_request, method="in_brand", label="Works in brand", empty_label="Any"
    )
    active = django_filters.ChoiceFilter(
        choices=[("yes", "Active"), ("no", "Deactivated")],
        method="by_active",
        label="Status",
        empty_label="Any",
    )
    otp = django_filters.ChoiceFilter(
        choices=[("yes", "Enrolled"), ("no", "Not enrolled")],
        method="by_otp",
        label="Second factor",
        empty_label="Any",
    )

    class Meta:
        model = User
        fields: list[str] = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        q = (
            Q(username__icontains=value)
            | Q(email__icontains=value)
            | Q(first_name__istartswith=value)
            | Q(last_name__istartswith=value)
        )
        if value.isdigit():
            q |= Q(pk=int(value))
        return queryset.filter(q)

    def in_brand(self, queryset, name, value):
        return queryset.filter(users_with_brand(value)) if value else queryset

    def by_active(self, queryset, name, value):
        return queryset.filter(is_active=value == "yes") if value else queryset

    def by_otp(self, queryset, name, value):
        return queryset.filter(otp_enrolled=value == "yes") if value else queryset


class RoleFilterSet(_Styled):
    q = SearchFilter(field_name="name", lookup_expr="icontains", help_text="Part of the name")

    class Meta:
        model = Group
        fields: list[str] = []


class BrandFilterSet(_Styled):
    q = SearchFilter(method="search", help_text="Code or name")
    jurisdiction = django_filters.CharFilter(lookup_expr="iexact", label="Jurisdiction")
    active = django_filters.ChoiceFilter(
        choices=[("yes", "Active"), ("no", "Inactive")],
        method="by_active",
        label="Status",
        empty_label="Any",
    )

    class Meta:
        model = Brand
        fields: list[str] = []

    def search(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value))

    def by_active(self, queryset, name, value):
        return queryset.filter(is_active=value == "yes") if value else queryset
