"""The ticket queue's filters: the queue itself plus indexed equalities and ranges."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from backoffice.cached_choices import CachedModelChoiceFilter
from backoffice.models import Brand
from players.filtersets import FilterForm
from players.models import Player
from players.selectors import player_search_q

from .models import (
    OPEN_STATUSES,
    SLA_BY_PRIORITY,
    SLA_RUNNING_STATUSES,
    SLA_WARNING_SHARE,
    TEAM_CHOICES,
    Macro,
    Ticket,
)
from .selectors import QUEUES, ticket_workers

SLA_CHOICES = [("breached", "Overdue"), ("warning", "Ageing (last quarter of the SLA)")]


class TicketFilterSet(django_filters.FilterSet):
    queue = django_filters.ChoiceFilter(
        choices=[(k, q.label) for k, q in QUEUES.items()], method="filter_queue",
        empty_label="Open tickets", label="Queue",
    )  # fmt: skip
    q = django_filters.CharFilter(
        label="Search", method="filter_q",
        widget=forms.TextInput(attrs={"placeholder": "Ticket #, player id, email, username"}),
    )  # fmt: skip
    player = django_filters.NumberFilter(field_name="player_id", label="Player id")
    status = django_filters.MultipleChoiceFilter(choices=Ticket.Status.choices)
    priority = django_filters.MultipleChoiceFilter(choices=Ticket.Priority.choices)
    category = django_filters.ChoiceFilter(choices=Ticket.Category.choices)
    team = django_filters.ChoiceFilter(choices=TEAM_CHOICES)
    assignee = CachedModelChoiceFilter(queryset=ticket_workers())
    brand = CachedModelChoiceFilter(queryset=Brand.objects.none())
    sla = django_filters.ChoiceFilter(choices=SLA_CHOICES, method="filter_sla", label="SLA")
    is_dispute = django_filters.BooleanFilter(
        label="Disputes only", widget=forms.CheckboxInput, method="filter_dispute"
    )
    created_from = django_filters.DateFilter(
        method="filter_created_from", label="Opened from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    created_to = django_filters.DateFilter(
        method="filter_created_to", label="Opened to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip

    class Meta:
        model = Ticket
        fields: list[str] = []
        form = FilterForm

    def __init__(self, data=None, *args, request=None, **kwargs):
        super().__init__(data, *args, request=request, **kwargs)
        self.user = request.user if request is not None else None
        if request is not None:
            self.filters["brand"].queryset = Brand.objects.in_brands(request.user)

    @property
    def qs(self):
        qs = super().qs
        # No queue and no status chosen: the open tickets, the working set.
        data = self.form.cleaned_data if self.form.is_bound else {}
        if not data.get("queue") and not data.get("status"):
            qs = qs.filter(status__in=OPEN_STATUSES)
        return qs

    def filter_queue(self, queryset, name, value):
        return queryset.filter(QUEUES[value].condition(self.user))

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        cond = Q()
        digits = value.lstrip("#").removeprefix("T-").removeprefix("t-")
        if digits.isdigit() and len(digits) <= 18:
            cond |= Q(pk=int(digits))
        player_cond = player_search_q(value)
        if player_cond is not None:
            cond |= Q(player__in=Player.objects.filter(player_cond).values("pk"))
        return queryset.filter(cond) if cond else queryset.none()

    def filter_sla(self, queryset, name, value):
        now = timezone.now()
        running = queryset.filter(status__in=SLA_RUNNING_STATUSES)
        if value == "breached":
            return running.filter(sla_due_at__lte=now)
        cond = Q()
        for priority, span in SLA_BY_PRIORITY.items():
            warn_from = now + span * SLA_WARNING_SHARE
            cond |= Q(priority=priority, sla_due_at__gt=now, sla_due_at__lte=warn_from)
        return running.filter(cond)

    def filter_dispute(self, queryset, name, value):
        return queryset.filter(is_dispute=True) if value else queryset

    def filter_created_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=datetime.combine(value, time.min, tzinfo=UTC))

    def filter_created_to(self, queryset, name, value):
        end = datetime.combine(value, time.min, tzinfo=UTC) + timedelta(days=1)
        return queryset.filter(created_at__lt=end)


class MacroFilterSet(django_filters.FilterSet):
    """Tens of macros at most: a contains match is fine here."""

    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")
    is_active = django_filters.BooleanFilter(label="Active")

    class Meta:
        model = Macro
        fields: list[str] = []
        form = FilterForm
