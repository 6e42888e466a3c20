"""The withdrawal queue: the list with its counts by path and age, the withdrawal's review page,
the small views that claim, approve, hold and reject it (htmx, in place), bulk approval, and
the Payments leads' risk policies and approval limits.

Views validate and translate: forms check input, `payments.services.queue` and
`payments.services.risk` decide and write, and a refused action comes back as a message in
the row (htmx) or on the page.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import Decimal
from html import escape as esc

import django_filters
import django_tables2 as tables
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist, PermissionDenied
from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, Trim
from django.http import HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views import View
from django.views.generic import FormView, TemplateView

from backoffice.dashboard import QueueCounter, register_counter
from backoffice.exceptions import BackofficeError
from backoffice.forms import compact_widgets
from backoffice.models import ApprovalRequest, Brand
from backoffice.money import exponent_for, format_money, to_minor
from backoffice.scoping import brand_ids_for
from backoffice.templatetags.ui import reltime, short_duration, status_badge
from backoffice.views_base import ObjectListView, StaffRequiredMixin, bounded_count
from players.models import Player
from players.selectors import player_notes

from .choices import WithdrawalReason
from .models import (
    ApproverLimit,
    Currency,
    PaymentStatus,
    Psp,
    RiskPath,
    RiskPolicy,
    Withdrawal,
)
from .risk.engine import POLICY_REASONS, reason_labels
from .selectors import recent_payments, wallet_rows
from .services import queue as queue_services
from .services import risk as risk_services
from .services.queue import AWAITING_DECISION

S = PaymentStatus
VIEW_PERMISSION = "payments.view_withdrawal"
REVIEW_PERMISSION = "payments.review_withdrawal"
APPROVE_PERMISSION = "payments.approve_withdrawal"
LEAD_PERMISSION = risk_services.MANAGE_PERMISSION

# How long a withdrawal may wait on each path before it is late; the last quarter is amber.
SLA_BY_PATH = {
    RiskPath.AUTO_PAY: timedelta(hours=1),  # waiting only when the cap ran out
    RiskPath.REVIEW: timedelta(hours=4),
    RiskPath.MANUAL: timedelta(hours=24),
}
SLA_WARNING_SHARE = 0.75
AGE_BUCKETS = (
    ("lt1h", "< 1 h", None, timedelta(hours=1)),
    ("1to4h", "1–4 h", timedelta(hours=1), timedelta(hours=4)),
    ("4to24h", "4–24 h", timedelta(hours=4), timedelta(hours=24)),
    ("gt24h", "> 24 h", timedelta(hours=24), None),
)
PATH_ROWS = (
    (RiskPath.REVIEW, "Review"),
    (RiskPath.MANUAL, "Manual (two approvers)"),
    (RiskPath.AUTO_PAY, "Auto-pay, cap reached"),
    ("none", "Not assessed"),
)


def label_for(code: str) -> str:
    """What staff read for a reason code (a risk reason, a hold or rejection reason)."""
    if not code:
        return ""
    labels = {**dict(WithdrawalReason.choices), **reason_labels(), "auto_pay": "auto-pay"}
    return labels.get(code, code.replace("_", " "))


def sla_state(withdrawal, now=None) -> str:
    """ "breached", "warning" or "" for a waiting withdrawal."""
    assessment = getattr(withdrawal, "risk_assessment", None)
    path = assessment.path if assessment else RiskPath.REVIEW
    sla = SLA_BY_PATH.get(path, SLA_BY_PATH[RiskPath.REVIEW])
    age = (now or timezone.now()) - withdrawal.created_at
    if age >= sla:
        return "breached"
    if age >= sla * SLA_WARNING_SHARE:
        return "warning"
    return ""


def _name_of(model, field: str, key: str, **conditions):
    """A name looked up by id in a scalar subquery: one index probe for each row shown, where
    a join would make PostgreSQL plan a nine-table query (20 ms) for 50 rows (under 1 ms)."""
    rows = model.objects.filter(pk=OuterRef(key), **conditions).values(field)[:1]
    return Subquery(rows, output_field=CharField())


def with_queue_names(qs):
    """What a queue row shows beside its withdrawal, assessment and queue row: the names of
    its player, brand, PSP, assignee, and who gave a pending first approval."""
    return qs.select_related("risk_assessment", "review").annotate(
        player_name=_name_of(Player, "username", "player_id"),
        brand_name=_name_of(Brand, "name", "brand_id"),
        psp_name=_name_of(Psp, "name", "psp_id"),
        assignee_name=_name_of(get_user_model(), "username", "review__assignee_id"),
        first_approval_by=_name_of(
            ApprovalRequest,
            "requested_by__username",
            "review__approval_id",
            status=ApprovalRequest.Status.PENDING,
        ),
    )


def queue_for(user):
    """Waiting withdrawals the user may see, with what a queue row shows (one query)."""
    return with_queue_names(
        Withdrawal.objects.restrict(user, "view").filter(status__in=AWAITING_DECISION)
    )


def _related(obj, name):
    """A reverse one-to-one that may be missing (withdrawals from before assessments)."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def queue_counts(user, filtered=None) -> dict:
    """Waiting withdrawals by path and age, the "mine" / "unassigned" / "follow-up due" counts
    and, given `filtered` (the list's filtered queryset), how many of them it shows.

    One query, every count in it bounded: a grouped count over at most `LIST_COUNT_LIMIT` + 1
    waiting withdrawals (the oldest, on the open-withdrawal index) and their paths, and the
    queue-row counts (mine, assigned, due) as bounded subqueries starting from the queue rows
    (joining all 10,000 queue rows for three small numbers doubled the query's time). Past the
    limit `capped` is true, the total reads "10,000+" and the other figures are lower bounds.
    """
    now = timezone.now()
    limit = settings.LIST_COUNT_LIMIT
    waiting = Withdrawal.objects.restrict(user, "view").filter(status__in=AWAITING_DECISION)
    columns = {
        "w_path": Coalesce("risk_assessment__path", Value("none")),
        "w_created": F("created_at"),
    }
    if filtered is not None:
        columns["w_shown"] = ExpressionWrapper(
            Q(pk__in=filtered.values("pk")), output_field=BooleanField()
        )
    try:
        inner, inner_params = (
            waiting.order_by("pk").values(**columns)[: limit + 1].query.sql_with_params()
        )
    except EmptyResultSet:  # no brand in scope (or no permission): nothing waits for them
        waiting, inner, inner_params = None, None, []
    # The outer query counts the rows the LIMIT-ed inner one found: the ORM cannot aggregate
    # over a sliced queryset with GROUP BY, and filtering the slice again by id would make
    # PostgreSQL scan every withdrawal.
    aggregates = [("total", "COUNT(*)", [])]
    for key, _, older, newer in AGE_BUCKETS:
        conds, values = [], []
        if older is not None:
            conds.append("w_created <= %s")
            values.append(now - older)
        if newer is not None:
            conds.append("w_created > %s")
            values.append(now - newer)
        aggregates.append((key, f"COUNT(*) FILTER (WHERE {' AND '.join(conds)})", values))
    if filtered is not None:
        aggregates.append(("filtered", "COUNT(*) FILTER (WHERE w_shown)", []))
    for key, subset in (
        ("mine", Q(review__assignee=user.pk)),
        ("assigned", Q(review__assignee__isnull=False)),
        ("follow_up_due", Q(review__follow_up_at__lte=now)),
    ):
        if waiting is not None:
            sql, values = (
                waiting.filter(subset).order_by().values("pk")[: limit + 1].query.sql_with_params()
            )
            aggregates.append((key, f"(SELECT COUNT(*) FROM ({sql}) AS {key})", list(values)))
    select = ", ".join(expr for _, expr, _ in aggregates)
    params = [v for _, _, values in aggregates for v in values]
    rows = {}
    if inner is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT w_path, {select} FROM ({inner}) AS waiting GROUP BY w_path",
                [*params, *inner_params],
            )
            rows = {
                path: dict(zip([key for key, *_ in aggregates], found, strict=True))
                for path, *found in cursor.fetchall()
            }
    table = []
    for path, label in PATH_ROWS:
        row = rows.get(path, {})
        table.append(
            {
                "path": path,
                "label": label,
                "total": row.get("total", 0),
                "cells": [(key, row.get(key, 0)) for key, *_ in AGE_BUCKETS],
            }
        )

    def summed(key):
        return sum(row.get(key, 0) for row in rows.values())

    def once(key):  # the same on every path's row
        return next(iter(rows.values()))[key] if rows else 0

    total = summed("total")
    return {
        "rows": table,
        "buckets": [(key, label) for key, label, *_ in AGE_BUCKETS],
        "total": min(total, limit),
        "capped": total > limit,
        "mine": once("mine"),
        # No queue row yet (from before assessments) counts as unassigned too.
        "unassigned": max(0, min(total, limit) - once("assigned")),
        "follow_up_due": once("follow_up_due"),
        "filtered": summed("filtered") if filtered is not None else None,
    }


# --------------------------------------------------------------------------------------------
# Filters and the table
# --------------------------------------------------------------------------------------------

QUEUE_CHOICES = [
    ("mine", "Assigned to me"),
    ("unassigned", "Unassigned"),
    ("held", "On hold"),
    ("follow_up", "Follow-up due"),
    ("second", "Waiting for a second approver"),
]


def queue_workers():
    """Staff who can work the queue (for the assignee filter)."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(groups__permissions__codename__in=["approve_withdrawal", "review_withdrawal"])
            | Q(user_permissions__codename__in=["approve_withdrawal", "review_withdrawal"])
            | Q(is_superuser=True)
        )
        .distinct()
        .order_by("username")
    )


def filter_choices(user) -> dict[str, list[tuple[str, str]]]:
    """The brand, PSP, currency and assignee choices of the queue's filters, in one query (a
    UNION of the four small lists): the user's brands and their PSPs, every currency, and the
    staff who can work the queue."""

    def rows(qs, kind, key, label, extra=None):
        return qs.order_by().values_list(
            Value(kind, output_field=CharField()),
            Cast(key, output_field=CharField()),
            F(label),
            extra if extra is not None else Value("", output_field=CharField()),
        )

    full_name = Trim(Concat("first_name", Value(" "), "last_name", output_field=CharField()))
    found = rows(Brand.objects.in_brands(user), "brand", "pk", "name").union(
        rows(Psp.objects.in_brands(user), "psp", "pk", "name"),
        rows(Currency.objects.all(), "currency", "code", "code"),
        rows(queue_workers(), "assignee", "pk", "username", full_name),
        all=True,
    )
    # Sorted as the models are (brands and PSPs by name, staff by username).
    choices: dict[str, list[tuple[str, str]]] = {
        "brand": [],
        "psp": [],
        "currency": [],
        "assignee": [],
    }
    for kind, key, label, full in sorted(found, key=lambda row: row[2]):
        # Labelled as the model's __str__ would (a user: "Full Name (username)").
        choices[kind].append((key, f"{full} ({label})" if full else label))
    return choices


class WithdrawalQueueFilterSet(django_filters.FilterSet):
    queue = django_filters.ChoiceFilter(
        choices=QUEUE_CHOICES, method="filter_queue", empty_label="Everything waiting",
        label="Queue",
    )  # fmt: skip
    reference = django_filters.CharFilter(method="filter_reference", label="Reference")
    # Plain choice filters on the ids, filled by `filter_choices` in one query: checking a
    # value needs no query of its own (a ModelChoiceFilter runs one per list and per value).
    brand = django_filters.ChoiceFilter(choices=[], field_name="brand_id", label="Brand")
    currency = django_filters.ChoiceFilter(choices=[], field_name="currency_id")
    psp = django_filters.ChoiceFilter(choices=[], field_name="psp_id", label="PSP")
    path = django_filters.ChoiceFilter(
        choices=[*RiskPath.choices, ("none", "Not assessed")], method="filter_path", label="Path"
    )
    reason = django_filters.ChoiceFilter(choices=[], method="filter_reason", label="Reason")
    assignee = django_filters.ChoiceFilter(
        choices=[], field_name="review__assignee_id", label="Assignee"
    )
    age = django_filters.ChoiceFilter(
        choices=[(k, label) for k, label, *_ in AGE_BUCKETS], method="filter_age", label="Waiting"
    )
    amount_min = django_filters.NumberFilter(
        method="filter_amount", label="Amount from", help_text="In the currency's units."
    )
    amount_max = django_filters.NumberFilter(method="filter_amount", label="Amount to")

    class Meta:
        model = Withdrawal
        fields: list[str] = []

    def __init__(self, data=None, *args, request=None, **kwargs):
        super().__init__(data, *args, request=request, **kwargs)
        self.user = request.user if request is not None else None
        self.choices = filter_choices(self.user)
        for name in ("brand", "psp", "currency", "assignee"):
            self.filters[name].extra["choices"] = self.choices[name]
        self.filters["reason"].extra["choices"] = sorted(
            reason_labels().items(), key=lambda item: item[1]
        )
        compact_widgets(self.form)

    def filter_queue(self, qs, name, value):
        now = timezone.now()
        if value == "mine":
            return qs.filter(review__assignee=self.user)
        if value == "unassigned":
            return qs.filter(Q(review__isnull=True) | Q(review__assignee__isnull=True))
        if value == "held":
            return qs.exclude(review__hold_reason="").filter(review__isnull=False)
        if value == "follow_up":
            return qs.filter(review__follow_up_at__lte=now)
        if value == "second":
            return qs.filter(review__approval__status="pending")
        return qs

    def filter_reference(self, qs, name, value):
        value = value.strip().upper()
        return qs.filter(reference=value) if value else qs

    def filter_path(self, qs, name, value):
        if value == "none":
            return qs.filter(risk_assessment__isnull=True)
        return qs.filter(risk_assessment__path=value)

    def filter_reason(self, qs, name, value):
        return qs.filter(risk_assessment__reasons__contains=[value])

    def filter_age(self, qs, name, value):
        now = timezone.now()
        for key, _, older, newer in AGE_BUCKETS:
            if key == value:
                if older is not None:
                    qs = qs.filter(created_at__lte=now - older)
                if newer is not None:
                    qs = qs.filter(created_at__gt=now - newer)
        return qs

    def filter_amount(self, qs, name, value):
        """Typed in the currency's units: converted with each currency's exponent."""
        if value is None:
            return qs
        lookup = "amount__gte" if name == "amount_min" else "amount__lte"
        chosen = self.form.cleaned_data.get("currency")
        codes = [chosen] if chosen else [code for code, _ in self.choices["currency"]]
        cond = Q()
        for code in codes:
            minor = int(Decimal(value).scaleb(exponent_for(code)).to_integral_value())
            cond |= Q(currency_id=code, **{lookup: minor})
        return qs.filter(cond)


TABLE_ATTRS = {"class": "table table-sm table-hover align-middle", "data-keyboard-rows": ""}
MONEY_ATTRS = {"th": {"class": "text-end"}, "td": {"class": "text-end text-nowrap"}}


SHORT_PATH = {RiskPath.AUTO_PAY: "Auto-pay", RiskPath.REVIEW: "Review", RiskPath.MANUAL: "Manual"}


NOT_ASSESSED = mark_safe('<span class="badge text-bg-light border">not assessed</span>')
PATH_LABELS = dict(RiskPath.choices)


@functools.cache
def _path_label(path: str) -> str:
    """The badge of a path (three of them): drawn once, not once per row."""
    return format_html(
        '<span title="{}">{}</span>',
        PATH_LABELS.get(path, path),
        status_badge(path, SHORT_PATH.get(path, path)),
    )


def path_badge(assessment) -> str:
    if assessment is None:
        return NOT_ASSESSED
    return mark_safe(
        f'{_path_label(assessment.path)} <span class="font-monospace small" '
        f'title="Risk score out of 100">{int(assessment.score)}</span>'
    )


def factor_chips(assessment, limit: int = 2) -> str:
    """The factors that weighed most, one short line each (the explanation on hover)."""
    if assessment is None:
        return "—"
    top = assessment.top_factors[:limit]
    if not top:
        return format_html('<span class="text-body-secondary">{}</span>', "no risk found")
    chips = format_html_join(
        "",
        '<div class="text-nowrap" title="{}">{} <span class="font-monospace">+{}</span></div>',
        (
            (f["explanation"], label_for(f["reason"]) if f.get("reason") else f["label"],
             f["points"])
            for f in top
        ),
    )  # fmt: skip
    more = len(assessment.top_factors) - len(top)
    if more > 0:
        chips = format_html('{}<div class="text-body-secondary">+{} more</div>', chips, more)
    return chips


class RowKit:
    """What every queue row of a response shares, worked out once: the URLs of its links and
    forms (reversed once and filled in per withdrawal: seven `reverse()` calls for each of 50
    rows cost more than the page's SQL), who is looking, what they may do, the CSRF field."""

    NAMES = {
        "review": "payments:withdrawal_review",
        "claim": "payments:withdrawal_claim",
        "approve": "payments:withdrawal_approve",
        "hold": "payments:withdrawal_hold",
        "reject": "payments:withdrawal_reject",
        "actions": "payments:withdrawal_actions",
        "player": "players:player_detail",
    }
    MARKER = 918_273_645  # an id that appears nowhere else in these paths

    def __init__(self, request):
        user = request.user
        self.user_id = user.pk
        self.may_review = user.has_perm(REVIEW_PERMISSION)
        self.may_approve = user.has_perm(APPROVE_PERMISSION)
        self.csrf_field = format_html(
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
        )
        self.parts = {}
        for key, name in self.NAMES.items():
            url = esc(reverse(name, kwargs={"pk": self.MARKER}))  # escaped once for HTML
            before, after = url.split(str(self.MARKER))
            self.parts[key] = (before, after)

    def url(self, key: str, pk: int) -> str:
        """The URL, escaped for an HTML attribute."""
        before, after = self.parts[key]
        return f"{before}{int(pk)}{after}"

    def urls(self, pk: int) -> dict[str, str]:
        """Every URL of the row, for templates (already escaped)."""
        return {key: mark_safe(self.url(key, pk)) for key in self.parts}


def amount_text(record) -> str:
    """ "1,234.50 EUR", worked out once per row (the amount cell and the approve prompt)."""
    text = getattr(record, "_amount_text", None)
    if text is None:
        text = record._amount_text = format_money(record.amount, record.currency_id)
    return text


# The two cells below are drawn for every row of every queue page, so they are f-strings over
# escaped text (`esc`, the standard library's escape that Django's also uses) rather than
# format_html, whose lazy-string checks on each argument cost more than the HTML itself.


def assignee_cell(record, kit: RowKit, oob: bool = False):
    """Who works a queue row: you, a colleague, or a Claim button (swapped out of band after
    an action)."""
    pk = int(record.pk)
    review = _related(record, "review")
    if review is not None and review.assignee_id:
        if review.assignee_id == kit.user_id:
            inner = "<strong>You</strong>"
        else:
            inner = esc(record.assignee_name or "")
    elif kit.may_review:
        url = kit.url("claim", pk)
        inner = (
            f'<form method="post" action="{url}" hx-post="{url}" hx-target="#wd-actions-{pk}" '
            f'hx-swap="outerHTML">{kit.csrf_field}<button class="btn btn-sm '
            f'btn-outline-primary py-0" type="submit">Claim<span class="visually-hidden"> '
            f"{esc(record.reference)}</span></button></form>"
        )
    else:
        inner = '<span class="text-body-secondary">—</span>'
    swap = ' hx-swap-oob="true"' if oob else ""
    return mark_safe(f'<div id="wd-assignee-{pk}"{swap} class="text-nowrap">{inner}</div>')


def actions_cell(record, kit: RowKit, result=None):
    """The actions of a queue row: approve (htmx POST), hold and reject (their forms open in
    the cell), and the outcome of the last action (`result`)."""
    parts = []
    if result is not None and result.message:
        parts.append(
            format_html(
                '<div class="small text-success w-100" role="status">{}</div>', result.message
            )
        )
    if result is not None and result.error:
        parts.append(
            format_html('<div class="small text-danger w-100" role="alert">{}</div>', result.error)
        )
    pk, ref = int(record.pk), esc(record.reference)
    target = f'hx-target="#wd-actions-{pk}" hx-swap="outerHTML"'
    if record.status in AWAITING_DECISION:
        if kit.may_approve:
            url = kit.url("approve", pk)
            amount = esc(amount_text(record))
            parts.append(
                f'<form method="post" action="{url}" hx-post="{url}" {target} '
                f'hx-confirm="Approve {ref} ({amount})?">{kit.csrf_field}<button class="btn '
                'btn-sm btn-success py-0" type="submit"><i class="bi bi-check-lg" '
                f'aria-hidden="true"></i> Approve<span class="visually-hidden"> {ref}</span>'
                "</button></form>"
            )
        links = [("hold", "btn-outline-warning", "Hold")] if kit.may_review else []
        if kit.may_approve:
            links.append(("reject", "btn-outline-danger", "Reject"))
        for key, css, label in links:
            url = kit.url(key, pk)
            parts.append(
                f'<a class="btn btn-sm {css} py-0" href="{url}" hx-get="{url}" {target}>'
                f'{label}<span class="visually-hidden"> {ref}</span></a>'
            )
    else:
        parts.append(status_badge(record.status, record.get_status_display()))
    return mark_safe(f'<div id="wd-actions-{pk}" class="d-grid gap-1">{"".join(parts)}</div>')


def row_context(request, record, result=None, oob: bool = False) -> dict:
    """What a view that redraws one queue row gives `_actions_cell.html` (the cells, the
    assignee one out of band after an action) or `_action_form.html`."""
    kit = RowKit(request)
    return {
        "record": record,
        "urls": kit.urls(record.pk),
        "actions_cell": actions_cell(record, kit, result),
        "assignee_cell": assignee_cell(record, kit, oob=oob),
        "oob": oob,
    }


class WithdrawalQueueTable(tables.Table):
    """The queue's columns. Every cell is drawn in Python from what `RowKit` worked out once
    for the page (no template per cell, no `reverse()` or permission check per row)."""

    selected = tables.CheckBoxColumn(
        accessor="pk",
        attrs={
            "th__input": {
                "form": "bulk-form",
                "aria-label": "Select every withdrawal on this page",
                "data-select-all": "",
            },
            "td__input": {"form": "bulk-form", "class": "form-check-input"},
        },
    )
    reference = tables.Column(
        orderable=False,
        verbose_name="Withdrawal",
        attrs={"td": {"class": "font-monospace small text-nowrap"}},
    )
    player = tables.Column(accessor="player_name", verbose_name="Player", orderable=False)
    amount = tables.Column(orderable=False, attrs=MONEY_ATTRS)
    path = tables.Column(accessor="pk", verbose_name="Path", orderable=False)
    risk = tables.Column(
        accessor="pk", verbose_name="Why", orderable=False, attrs={"td": {"class": "small"}}
    )
    id = tables.Column(verbose_name="Waiting", attrs={"td": {"class": "text-nowrap"}})
    assignee = tables.Column(accessor="pk", orderable=False)
    actions = tables.Column(accessor="pk", orderable=False, verbose_name="")

    class Meta:
        model = Withdrawal
        fields = ()
        sequence = (
            "selected", "reference", "player", "amount", "path", "risk", "id", "assignee",
            "actions",
        )  # fmt: skip
        order_by = ("id",)
        attrs = TABLE_ATTRS
        row_attrs = {"class": lambda table, record: table.sla_class(record),
                     "data-withdrawal": lambda record: record.pk}  # fmt: skip
        empty_text = (
            "No withdrawal waits for a decision here in the brands you cover. Low-risk ones "
            "auto-pay within the daily caps; the others appear as players request them."
        )

    @cached_property
    def kit(self) -> RowKit:
        return RowKit(self.request)

    @cached_property
    def now(self):
        return timezone.now()

    def sla_class(self, record) -> str:
        state = sla_state(record, self.now)
        return f"sla-{state}" if state else ""

    def render_selected(self, value):
        return mark_safe(
            f'<input type="checkbox" name="selected" value="{int(value)}" form="bulk-form" '
            'class="form-check-input">'
        )

    def render_reference(self, value, record):
        return mark_safe(
            f'<a href="{self.kit.url("review", record.pk)}">{esc(value)}</a>'
            f'<div class="text-body-secondary">{esc(record.psp_name or "")}</div>'
        )

    def render_player(self, value, record):
        return mark_safe(
            f'<a href="{self.kit.url("player", record.player_id)}">{esc(value)}</a>'
            f'<div class="small text-body-secondary">{esc(record.brand_name or "")}</div>'
        )

    def render_amount(self, value, record):
        return mark_safe(f'<span class="money">{esc(amount_text(record))}</span>')

    def render_path(self, record):
        return path_badge(_related(record, "risk_assessment"))

    def render_risk(self, record):
        assessment = _related(record, "risk_assessment")
        review = _related(record, "review")
        chips = factor_chips(assessment)
        rules = [POLICY_REASONS[r] for r in (assessment.reasons if assessment else [])
                 if r in POLICY_REASONS]  # fmt: skip
        if rules:
            chips = format_html(
                '{}<div class="small text-body-secondary">{}</div>', chips, "; ".join(rules)
            )
        if review is not None and review.hold_reason:
            chips = format_html(
                '{}<div class="small text-warning-emphasis">On hold: {} · follow up {}</div>',
                chips,
                label_for(review.hold_reason),
                reltime(review.follow_up_at),
            )
        if record.first_approval_by:
            chips = format_html(
                '{}<div class="small">First approval by {}: waiting for a second</div>',
                chips,
                record.first_approval_by,
            )
        return chips

    def render_id(self, record):
        state = sla_state(record, self.now)
        # What `reltime` draws, with the page's one "now".
        at = record.created_at
        seconds = (self.now - at).total_seconds()
        words = short_duration(abs(seconds))
        words = f"{words} ago" if seconds >= 0 else f"in {words}"
        exact = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        age = f'<time datetime="{at.isoformat()}" title="{exact}">{words}</time>'
        if state == "breached":
            return mark_safe(f'<span class="text-danger fw-semibold">{age} · late</span>')
        if state == "warning":
            return mark_safe(f'<span class="text-warning-emphasis">{age}</span>')
        return mark_safe(age)

    def render_assignee(self, record):
        return assignee_cell(record, self.kit)

    def render_actions(self, record):
        return actions_cell(record, self.kit)


# --------------------------------------------------------------------------------------------
# The queue page
# --------------------------------------------------------------------------------------------


class BulkApproveForm(forms.Form):
    """The ticked rows (`selected`, checkboxes of the table) and an optional note."""

    note = forms.CharField(max_length=300, required=False, label="Note")
    next = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["note"].widget.attrs.update(
            {"class": "form-control form-control-sm", "placeholder": "Note (optional)"}
        )

    def clean(self):
        data = super().clean()
        raw = self.data.getlist("selected") if hasattr(self.data, "getlist") else []
        try:
            data["selected"] = [int(value) for value in raw]
        except ValueError:
            raise forms.ValidationError("The selection is not a list of withdrawals.")
        if not data["selected"]:
            raise forms.ValidationError("Tick the withdrawals to approve.")
        return data


class WithdrawalQueueView(ObjectListView):
    """Waiting withdrawals, oldest first, with counts by path and age and bulk approval."""

    model = Withdrawal
    permission_required = VIEW_PERMISSION
    filterset_class = WithdrawalQueueFilterSet
    table_class = WithdrawalQueueTable
    template_name = "payments/queue/queue.html"
    title = "Withdrawal queue"
    per_page = 50
    export_permission = VIEW_PERMISSION
    export_fields = [
        ("id", "id"),
        ("reference", "reference"),
        ("brand", "brand__code"),
        ("player_id", "player_id"),
        ("amount_minor", "amount"),
        ("currency", "currency_id"),
        ("psp", "psp__code"),
        ("status", "status"),
        ("path", "risk_assessment__path"),
        ("score", "risk_assessment__score"),
        ("reasons", "risk_assessment__reasons"),
        ("assignee", "review__assignee__username"),
        ("created_at", "created_at"),
    ]

    def get_queryset(self):
        return queue_for(self.request.user)

    count_rows = False  # counted with the queue's counts below, in the same query

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user = self.request.user
        filterset = kwargs.get("filterset")
        shown = kwargs["table"].data.data if "table" in kwargs else None
        narrowed = bool(
            filterset is not None and filterset.is_bound and filterset.form.changed_data
        )
        counts = queue_counts(user, shown if narrowed else None)
        if not narrowed:
            ctx["row_count"], ctx["row_count_capped"] = counts["total"], counts["capped"]
        elif not counts["capped"]:
            ctx["row_count"], ctx["row_count_capped"] = counts["filtered"], False
        else:  # past the cap the counts saw only the oldest rows: count the filtered ones
            ctx["row_count"], ctx["row_count_capped"] = bounded_count(shown)
        ctx.update(
            counts=counts,
            current_queue=self.request.GET.get("queue", ""),
            may_approve=user.has_perm(APPROVE_PERMISSION),
            bulk_form=BulkApproveForm(initial={"next": self.request.get_full_path()}),
        )
        return ctx


class QueueCountsView(StaffRequiredMixin, TemplateView):
    """The counts card alone (polled, and swapped after each action)."""

    permission_required = VIEW_PERMISSION
    template_name = "payments/queue/_counts.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(counts=queue_counts(self.request.user), **kwargs)


class BulkApproveView(StaffRequiredMixin, View):
    """Approve the ticked withdrawals, all or nothing, within the approver's limit."""

    http_method_names = ["post"]
    permission_required = APPROVE_PERMISSION

    def post(self, request, *args, **kwargs):
        form = BulkApproveForm(request.POST)
        target = request.POST.get("next") or reverse("payments:withdrawal_queue")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("payments:withdrawal_queue")
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return HttpResponseRedirect(target)
        try:
            done = queue_services.do_bulk_approve_withdrawals(
                form.cleaned_data["selected"],
                acting_user=request.user,
                note=form.cleaned_data["note"],
            )
        except (BackofficeError, PermissionDenied) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"{len(done)} withdrawal{'s' if len(done) != 1 else ''} approved."
            )
        return HttpResponseRedirect(target)


# --------------------------------------------------------------------------------------------
# One withdrawal: the review page and the actions
# --------------------------------------------------------------------------------------------


def _follow_up_default():
    return (timezone.now() + timedelta(hours=24)).replace(second=0, microsecond=0)


class HoldForm(forms.Form):
    reason_code = forms.ChoiceField(
        choices=[("", "Pick a reason…"), *WithdrawalReason.choices], label="Reason"
    )
    follow_up_at = forms.DateTimeField(
        label="Follow up at (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    note = forms.CharField(max_length=300, required=False, label="Note")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("follow_up_at", _follow_up_default())
        super().__init__(*args, **kwargs)
        compact_widgets(self)


class RejectForm(forms.Form):
    reason_code = forms.ChoiceField(
        choices=[("", "Pick a reason…"), *WithdrawalReason.choices], label="Reason"
    )
    note = forms.CharField(max_length=300, required=False, label="Note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        compact_widgets(self)


class ApproveForm(forms.Form):
    note = forms.CharField(max_length=300, required=False, label="Note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        compact_widgets(self)


def _withdrawal_or_404(user, pk):
    qs = with_queue_names(Withdrawal.objects.restrict(user, "view")).select_related(
        "player",
        "psp",
        "brand",
        "risk_assessment",
        "review",
        "review__assignee",
        "review__approval",
        "review__approval__requested_by",
    )
    return get_object_or_404(qs, pk=pk)


@dataclass
class RowResult:
    message: str = ""
    error: str = ""


class WithdrawalReviewView(StaffRequiredMixin, TemplateView):
    """Everything about one withdrawal and its player, and the actions the user may take."""

    permission_required = VIEW_PERMISSION
    template_name = "payments/queue/review.html"
    bound_forms: dict | None = None

    def get_context_data(self, **kwargs):
        user = self.request.user
        w = _withdrawal_or_404(user, self.kwargs["pk"])
        assessment = _related(w, "risk_assessment")
        review = _related(w, "review")
        forms_ = {
            "approve_form": ApproveForm(auto_id="approve_form_%s"),
            "hold_form": HoldForm(auto_id="hold_form_%s"),
            "reject_form": RejectForm(auto_id="reject_form_%s"),
        }
        forms_.update(self.bound_forms or {})
        player = w.player
        return super().get_context_data(
            title=f"Withdrawal {w.reference}",
            w=w,
            assessment=assessment,
            review=review,
            factors=sorted(assessment.factors, key=lambda f: -f["points"]) if assessment else [],
            sla=sla_state(w) if w.status in AWAITING_DECISION else "",
            waiting=w.status in AWAITING_DECISION,
            transitions=[
                {
                    "at": t.at,
                    "to_status": t.to_status,
                    "reason": label_for(t.reason_code),
                    "note": t.note,
                    "actor": t.actor.get_username() if t.actor else t.get_actor_kind_display(),
                }
                for t in w.transitions.select_related("actor")
            ],
            reasons=[label_for(code) for code in (assessment.reasons if assessment else [])],
            status_reason=label_for(w.status_reason),
            hold_reason=label_for(review.hold_reason) if review else "",
            attempts=list(w.payout_attempts.all()),
            wallet=wallet_rows(player),
            payments=recent_payments(player, user, limit=10),
            notes=player_notes(player, user, category="general", limit=5),
            risk_notes=player_notes(player, user, category="risk", limit=5),
            may_review=user.has_perm(REVIEW_PERMISSION),
            may_approve=user.has_perm(APPROVE_PERMISSION),
            limit=queue_services.approval_limit(user, w.brand_id, w.currency_id),
            **forms_,
            **kwargs,
        )


class WithdrawalActionView(StaffRequiredMixin, View):
    """POST an action on one withdrawal. From the queue (htmx) the row's actions cell comes
    back with the outcome, the assignee cell and the counts out of band; from the review page
    (no htmx) a redirect, or the page again with the form's error (422)."""

    http_method_names = ["get", "post"]
    permission_required = REVIEW_PERMISSION
    form_class: type[forms.Form] | None = None
    form_name = ""
    form_template = "payments/queue/_action_form.html"
    title = ""

    def get_withdrawal(self):
        return _withdrawal_or_404(self.request.user, self.kwargs["pk"])

    def run(self, withdrawal, data) -> str:
        raise NotImplementedError

    def get(self, request, *args, **kwargs):
        """The action's form: a fragment in the row (htmx), or a page of its own."""
        if self.form_class is None:
            return redirect("payments:withdrawal_review", pk=self.kwargs["pk"])
        w = self.get_withdrawal()
        form = self.form_class(auto_id=f"wd{w.pk}_%s") if request.htmx else self.form_class()
        ctx = {
            **row_context(request, w),
            "form": form,
            "action": self,
            "title": self.title,
        }
        if request.htmx:
            return TemplateResponse(request, self.form_template, ctx)
        return TemplateResponse(request, "payments/queue/action_page.html", ctx)

    def post(self, request, *args, **kwargs):
        w = self.get_withdrawal()
        form = None
        if self.form_class is not None:
            auto_id = f"wd{w.pk}_%s" if request.htmx else f"{self.form_name}_%s"
            form = self.form_class(request.POST, auto_id=auto_id)
        result = RowResult()
        if form is not None and not form.is_valid():
            result.error = "; ".join(e for errors in form.errors.values() for e in errors)
        else:
            try:
                result.message = self.run(w, form.cleaned_data if form else {})
            except (BackofficeError, PermissionDenied) as exc:
                result.error = str(exc)
        w = self.get_withdrawal()
        if request.htmx:
            ctx = {
                **row_context(request, w, result, oob=True),
                "result": result,
                "counts": queue_counts(request.user),
                "form": form if result.error else None,
                "action": self,
            }
            reopen = form is not None and result.error and self.title  # hold, reject
            template = self.form_template if reopen else "payments/queue/_actions_cell.html"
            return TemplateResponse(request, template, ctx)
        if result.error:
            if form is not None and self.form_name:
                form.add_error(None, result.error)
                view = WithdrawalReviewView(request=request, kwargs=self.kwargs)
                view.bound_forms = {self.form_name: form}
                response = TemplateResponse(request, view.template_name, view.get_context_data())
                response.status_code = 422
                return response
            messages.error(request, result.error)
        else:
            messages.success(request, result.message)
        return redirect("payments:withdrawal_review", pk=w.pk)


class ClaimView(WithdrawalActionView):
    http_method_names = ["post"]

    def run(self, w, data):
        queue_services.do_claim_withdrawal(w.pk, acting_user=self.request.user)
        return f"{w.reference} is yours."


class ReleaseView(WithdrawalActionView):
    http_method_names = ["post"]

    def run(self, w, data):
        queue_services.do_release_withdrawal(w.pk, acting_user=self.request.user)
        return f"{w.reference} is back in the queue."


class ApproveView(WithdrawalActionView):
    http_method_names = ["post"]
    permission_required = APPROVE_PERMISSION
    form_class = ApproveForm
    form_name = "approve_form"

    def run(self, w, data):
        decision = queue_services.do_approve_queued_withdrawal(
            w.pk, acting_user=self.request.user, note=data.get("note", "")
        )
        return decision.message


class HoldView(WithdrawalActionView):
    form_class = HoldForm
    form_name = "hold_form"
    title = "Hold"

    def run(self, w, data):
        review = queue_services.do_hold_queued_withdrawal(
            w.pk,
            acting_user=self.request.user,
            reason_code=data["reason_code"],
            note=data["note"],
            follow_up_at=data["follow_up_at"],
        )
        when = review.follow_up_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"{w.reference} held ({label_for(review.hold_reason)}) until {when}."


class RejectView(WithdrawalActionView):
    permission_required = APPROVE_PERMISSION
    form_class = RejectForm
    form_name = "reject_form"
    title = "Reject"

    def run(self, w, data):
        queue_services.do_reject_queued_withdrawal(
            w.pk,
            acting_user=self.request.user,
            reason_code=data["reason_code"],
            note=data["note"],
        )
        return (
            f"{w.reference} rejected: {format_money(w.amount, w.currency_id)} is back in the "
            "player's cash."
        )


class ActionsCellView(StaffRequiredMixin, TemplateView):
    """The actions cell as it is (a hold or reject form's Cancel brings it back)."""

    permission_required = VIEW_PERMISSION
    template_name = "payments/queue/_actions_cell.html"

    def get_context_data(self, **kwargs):
        w = _withdrawal_or_404(self.request.user, self.kwargs["pk"])
        return super().get_context_data(**row_context(self.request, w), **kwargs)


# --------------------------------------------------------------------------------------------
# Risk policies and approval limits (Payments leads)
# --------------------------------------------------------------------------------------------


MONEY_FIELDS = (
    "auto_pay_max_amount",
    "daily_auto_pay_cap",
    "approver_limit",
    "kyc0_limit",
    "kyc1_limit",
    "kyc2_limit",
)


class RiskPolicyForm(forms.Form):
    """A policy's thresholds; amounts typed in the currency's units."""

    brand = forms.ModelChoiceField(queryset=Brand.objects.none())
    currency = forms.ModelChoiceField(queryset=Currency.objects.all(), to_field_name="code")
    review_score = forms.IntegerField(
        min_value=0, max_value=100, initial=30, help_text="From this score (0–100), one approver."
    )
    manual_score = forms.IntegerField(
        min_value=0, max_value=100, initial=70, help_text="From this score, two approvers."
    )
    auto_pay_max_amount = forms.DecimalField(
        min_value=0, label="Largest auto-paid withdrawal", help_text="0 switches auto-pay off."
    )
    daily_auto_pay_cap = forms.DecimalField(min_value=0, label="Auto-pay cap per UTC day")
    approver_limit = forms.DecimalField(
        min_value=0,
        required=False,
        label="Approval limit of one approver",
        help_text="For one withdrawal or one bulk approval. Blank: no limit.",
    )
    kyc0_limit = forms.DecimalField(min_value=0, label="Without KYC, up to")
    kyc1_limit = forms.DecimalField(min_value=0, label="KYC level 1, up to")
    kyc2_limit = forms.DecimalField(min_value=0, label="KYC level 2, up to")
    reason = forms.CharField(max_length=300, help_text="Why: kept in the audit trail.")

    def __init__(self, *args, user=None, policy=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = Brand.objects.in_brands(user)
        if policy is not None:
            self.fields["brand"].disabled = True
            self.fields["currency"].disabled = True
        for field in self.fields.values():
            widget = field.widget
            css = "form-select" if isinstance(widget, forms.Select) else "form-control"
            widget.attrs["class"] = css

    def clean(self):
        data = super().clean()
        currency = data.get("currency")
        if currency is None:
            return data
        for name in MONEY_FIELDS:
            value = data.get(name)
            if value is None:
                data[name] = None
                continue
            try:
                data[name] = to_minor(value, currency.code)
            except ValueError:
                self.add_error(name, f"{currency.code} has {exponent_for(currency.code)} decimals.")
        return data


def _major(minor, code):
    if minor is None:
        return None
    return Decimal(minor).scaleb(-exponent_for(code))


class RiskPolicyListView(StaffRequiredMixin, TemplateView):
    """Every policy of the user's brands, and the personal approval limits."""

    permission_required = "payments.view_riskpolicy"
    template_name = "payments/queue/policy_list.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        policies = RiskPolicy.objects.restrict(user, "view").select_related("brand", "currency")
        return super().get_context_data(
            title="Withdrawal risk policies",
            policies=list(policies.order_by("brand__name", "currency")),
            limits=list(ApproverLimit.objects.select_related("user").order_by("user__username")),
            may_manage=user.has_perm(LEAD_PERMISSION),
            limit_form=ApproverLimitForm(),
            **kwargs,
        )


class RiskPolicyEditView(StaffRequiredMixin, FormView):
    """Create a policy, or change one (Payments leads)."""

    permission_required = LEAD_PERMISSION
    form_class = RiskPolicyForm
    template_name = "layouts/form.html"

    def get_policy(self):
        pk = self.kwargs.get("pk")
        if pk is None:
            return None
        if not hasattr(self, "_policy"):
            self._policy = get_object_or_404(
                RiskPolicy.objects.restrict(self.request.user, "view"), pk=pk
            )
        return self._policy

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.update(user=self.request.user, policy=self.get_policy())
        return kwargs

    def get_initial(self):
        policy = self.get_policy()
        if policy is None:
            return {}
        code = policy.currency_id
        initial = {
            "brand": policy.brand_id,
            "currency": code,
            "review_score": policy.review_score,
            "manual_score": policy.manual_score,
        }
        for name in MONEY_FIELDS:
            initial[name] = _major(getattr(policy, name), code)
        return initial

    def get_context_data(self, **kwargs):
        policy = self.get_policy()
        return super().get_context_data(
            title=f"Risk policy · {policy}" if policy else "New risk policy",
            submit_label="Save policy",
            cancel_url=reverse("payments:risk_policy_list"),
            **kwargs,
        )

    def form_valid(self, form):
        data = form.cleaned_data
        values = {name: data[name] for name in risk_services.POLICY_FIELDS}
        try:
            policy = risk_services.do_save_risk_policy(
                brand_id=data["brand"].pk,
                currency=data["currency"].code,
                values=values,
                reason=data["reason"],
                acting_user=self.request.user,
            )
        except (BackofficeError, PermissionDenied) as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"Risk policy for {policy} saved.")
        return redirect("payments:risk_policy_list")


class ApproverLimitForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Approver")
    currency = forms.ModelChoiceField(queryset=Currency.objects.all(), to_field_name="code")
    amount = forms.DecimalField(
        min_value=0, required=False, help_text="Blank removes the personal limit."
    )
    reason = forms.CharField(max_length=300)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = queue_workers()
        compact_widgets(self)


class ApproverLimitView(StaffRequiredMixin, View):
    http_method_names = ["post"]
    permission_required = LEAD_PERMISSION

    def post(self, request, *args, **kwargs):
        form = ApproverLimitForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect("payments:risk_policy_list")
        data = form.cleaned_data
        code = data["currency"].code
        try:
            amount = None if data["amount"] is None else to_minor(data["amount"], code)
            risk_services.do_set_approver_limit(
                user=data["user"],
                currency=code,
                amount=amount,
                reason=data["reason"],
                acting_user=request.user,
            )
        except ValueError:
            messages.error(request, f"{code} has {exponent_for(code)} decimals.")
        except (BackofficeError, PermissionDenied) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Approval limit of {data['user']} in {code} saved.")
        return redirect("payments:risk_policy_list")


# --------------------------------------------------------------------------------------------
# Home-page counter
# --------------------------------------------------------------------------------------------


def _waiting(user) -> int:
    ids = brand_ids_for(user)
    qs = Withdrawal.objects.filter(status__in=AWAITING_DECISION)
    if ids is not None:
        qs = qs.filter(brand_id__in=ids)
    return bounded_count(qs, 999)[0]


register_counter(
    QueueCounter(
        key="payments.withdrawals_waiting",
        label="Withdrawals waiting for a decision",
        permission=APPROVE_PERMISSION,
        count=_waiting,
        url_name="payments:withdrawal_queue",
        help="Review and manual withdrawals, oldest first; late ones are marked red.",
        order=30,
    )
)
