"""Reconciliation pages: settlement reports (upload, progress, counts, errors, re-run) and the
exceptions queue (both sides of a break, resolve with a note, propose a correcting adjustment
that a second person approves).

Views validate and translate: forms check input, `payments.services.reconciliation` writes,
and the run itself happens in the Celery job (`payments.reconciliation.tasks`).
"""

from __future__ import annotations

from decimal import Decimal

import django_filters
import django_tables2 as tables
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.views import View
from django.views.generic import FormView, TemplateView
from django_htmx.http import HttpResponseClientRefresh

from backoffice.dashboard import QueueCounter, register_counter
from backoffice.exceptions import BackofficeError
from backoffice.forms import compact_widgets
from backoffice.models import Brand
from backoffice.money import exponent_for, format_money, to_minor
from backoffice.templatetags.ui import money, reltime, status_badge
from backoffice.views_base import ObjectListView, StaffRequiredMixin, bounded_count
from players.selectors import players_for

from .choices import AdjustmentReason, BalanceKind, Direction
from .models import Discrepancy, Psp, ReconciliationException, SettlementReport
from .reconciliation.formats import FORMATS
from .reconciliation.runner import read_progress
from .services import reconciliation as services

VIEW_REPORTS = "payments.view_settlementreport"
VIEW_EXCEPTIONS = "payments.view_reconciliationexception"
X = ReconciliationException.Status
R = SettlementReport.Status

TABLE_ATTRS = {"class": "table table-sm table-hover align-middle", "data-keyboard-rows": ""}
MONEY_ATTRS = {"th": {"class": "text-end"}, "td": {"class": "text-end text-nowrap"}}


def _psps(user):
    """PSPs of the user's brands whose adapter has a settlement report format."""
    return Psp.objects.in_brands(user).filter(adapter__in=list(FORMATS)).order_by("name")


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


class ReportFilterSet(django_filters.FilterSet):
    psp = django_filters.ModelChoiceFilter(queryset=Psp.objects.none(), label="PSP")
    status = django_filters.ChoiceFilter(choices=R.choices)

    class Meta:
        model = SettlementReport
        fields: list[str] = []

    def __init__(self, data=None, *args, request=None, **kwargs):
        super().__init__(data, *args, request=request, **kwargs)
        if request is not None:
            self.filters["psp"].queryset = _psps(request.user)
        compact_widgets(self.form)


class ReportTable(tables.Table):
    id = tables.Column(
        verbose_name="#",
        linkify=("payments:reconciliation_detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "font-monospace"}},
    )
    psp = tables.Column(accessor="psp__name", verbose_name="PSP", orderable=False)
    original_name = tables.Column(verbose_name="File", orderable=False)
    period_start = tables.Column(verbose_name="Period", orderable=False)
    status = tables.Column(orderable=False)
    line_count = tables.Column(verbose_name="Lines", orderable=False, attrs=MONEY_ATTRS)
    exceptions = tables.Column(
        accessor="pk", verbose_name="Breaks", orderable=False, attrs=MONEY_ATTRS
    )
    uploaded_at = tables.Column(verbose_name="Uploaded", orderable=False)

    class Meta:
        model = SettlementReport
        fields = ()
        sequence = ("id", "psp", "original_name", "period_start", "status", "line_count",
                    "exceptions", "uploaded_at")  # fmt: skip
        order_by = ("-id",)
        attrs = TABLE_ATTRS
        empty_text = (
            "No settlement report yet for the brands you cover. Upload one, or run "
            "manage.py reconcile <psp_code> <file>."
        )

    def render_period_start(self, record):
        if not record.period_start:
            return "—"
        if record.period_start == record.period_end:
            return str(record.period_start)
        return f"{record.period_start} – {record.period_end}"

    def render_status(self, value, record):
        return status_badge(value, record.get_status_display())

    def render_exceptions(self, record):
        if record.status != R.DONE:
            return "—"
        return record.exception_count

    def render_uploaded_at(self, value, record):
        who = record.uploaded_by.get_username() if record.uploaded_by else "command line"
        return format_html("{} · {}", reltime(value), who)


class ReportListView(ObjectListView):
    model = SettlementReport
    permission_required = VIEW_REPORTS
    filterset_class = ReportFilterSet
    table_class = ReportTable
    template_name = "payments/reconciliation/report_list.html"
    title = "Reconciliation"
    count_rows = False

    def get_queryset(self):
        return super().get_queryset().select_related("psp", "uploaded_by")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["open_exceptions"] = _open_exceptions(self.request.user)
        return ctx


class UploadForm(forms.Form):
    psp = forms.ModelChoiceField(queryset=Psp.objects.none(), label="PSP")
    file = forms.FileField(help_text="The PSP's settlement report, a CSV in its own format.")
    period_start = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Blank: the first day of the report's lines.",
    )  # fmt: skip
    period_end = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Blank: the last day of the report's lines.",
    )  # fmt: skip

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        psps = _psps(user)
        self.fields["psp"].queryset = psps
        columns = "; ".join(f"{p.name}: {FORMATS[p.adapter].example_header()}" for p in psps[:10])
        if columns:
            self.fields["file"].help_text += f" Columns — {columns}."
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs["class"] = css


class ReportUploadView(StaffRequiredMixin, FormView):
    permission_required = services.UPLOAD_PERMISSION
    form_class = UploadForm
    template_name = "layouts/form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title="Upload a settlement report", submit_label="Upload and reconcile",
            cancel_url=reverse("payments:reconciliation_list"), **kwargs,
        )  # fmt: skip

    def form_valid(self, form):
        data = form.cleaned_data
        upload = data["file"]
        try:
            report, created = services.do_upload_settlement_report(
                data["psp"], stream=upload, name=upload.name, acting_user=self.request.user,
                period_start=data["period_start"], period_end=data["period_end"],
            )  # fmt: skip
        except (BackofficeError, PermissionDenied) as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        if created:
            messages.success(self.request, f"Report #{report.pk} uploaded: reconciling now.")
        else:
            messages.info(
                self.request,
                f"This file was uploaded already as report #{report.pk}: here it is. Run it "
                "again from here if our side changed since.",
            )
        return redirect("payments:reconciliation_detail", pk=report.pk)


def _report_or_404(user, pk):
    qs = SettlementReport.objects.restrict(user, "view").select_related("psp", "uploaded_by")
    return get_object_or_404(qs, pk=pk)


class ReportDetailView(StaffRequiredMixin, TemplateView):
    """A report: its progress while it runs, then the count of each class (each a link to the
    exceptions), or the lines that made it rejected."""

    permission_required = VIEW_REPORTS
    template_name = "payments/reconciliation/report_detail.html"

    def get_context_data(self, **kwargs):
        report = _report_or_404(self.request.user, self.kwargs["pk"])
        counts = [
            (code, Discrepancy(code).label, report.counts.get(code, 0))
            for code in Discrepancy.values
        ]
        return super().get_context_data(
            title=f"Report #{report.pk} · {report.original_name}",
            report=report,
            counts=counts,
            progress=read_progress(report.pk),
            running=report.status in (R.QUEUED, R.RUNNING),
            may_rerun=self.request.user.has_perm(services.UPLOAD_PERMISSION),
            **kwargs,
        )


class ReportProgressView(StaffRequiredMixin, View):
    """The progress bar, polled while the report runs; once it is finished the page reloads
    to show the result."""

    permission_required = VIEW_REPORTS

    def get(self, request, *args, **kwargs):
        report = _report_or_404(request.user, self.kwargs["pk"])
        if report.status not in (R.QUEUED, R.RUNNING):
            if request.htmx:
                return HttpResponseClientRefresh()
            return redirect("payments:reconciliation_detail", pk=report.pk)
        return TemplateResponse(
            request,
            "payments/reconciliation/_progress.html",
            {"report": report, "progress": read_progress(report.pk)},
        )


class ReportRerunView(StaffRequiredMixin, View):
    http_method_names = ["post"]
    permission_required = services.UPLOAD_PERMISSION

    def post(self, request, *args, **kwargs):
        report = _report_or_404(request.user, self.kwargs["pk"])
        try:
            services.do_rerun_settlement_report(report.pk, acting_user=request.user)
        except (BackofficeError, PermissionDenied) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Report #{report.pk} runs again.")
        return redirect("payments:reconciliation_detail", pk=report.pk)


# --------------------------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------------------------

EXCEPTION_STATUS = [("open", "Open (incl. awaiting approval)"), *X.choices, ("all", "All")]


class ExceptionFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=EXCEPTION_STATUS, method="filter_status", empty_label=None
    )
    kind = django_filters.ChoiceFilter(
        choices=[(c, Discrepancy(c).label) for c in Discrepancy.values if c != "matched"],
        label="Class",
    )
    psp = django_filters.ModelChoiceFilter(queryset=Psp.objects.none(), label="PSP")
    brand = django_filters.ModelChoiceFilter(queryset=Brand.objects.none())
    report = django_filters.NumberFilter(method="filter_report", label="Report #")
    reference = django_filters.CharFilter(method="filter_reference", label="Reference")

    class Meta:
        model = ReconciliationException
        fields: list[str] = []

    def __init__(self, data=None, *args, request=None, **kwargs):
        data = data.copy() if data is not None else {}
        data.setdefault("status", "open")
        super().__init__(data, *args, request=request, **kwargs)
        if request is not None:
            self.filters["psp"].queryset = _psps(request.user)
            self.filters["brand"].queryset = Brand.objects.in_brands(request.user)
        compact_widgets(self.form)

    def filter_status(self, qs, name, value):
        if value == "all":
            return qs
        if value == "open":
            return qs.filter(status__in=ReconciliationException.OPEN_STATUSES)
        return qs.filter(status=value)

    def filter_report(self, qs, name, value):
        return qs.filter(last_report_id=value) | qs.filter(report_id=value)

    def filter_reference(self, qs, name, value):
        value = value.strip()
        if not value:
            return qs
        return qs.filter(match_key=value) | qs.filter(merchant_reference=value)


def _side(amount, currency, status) -> str:
    if amount is None and not status:
        return format_html('<span class="text-body-secondary">{}</span>', "absent")
    parts = [money(amount, currency) if amount is not None else "—"]
    if status:
        parts.append(status_badge(status))
    return format_html("{} {}", *parts)


class ExceptionTable(tables.Table):
    id = tables.Column(
        verbose_name="#",
        linkify=("payments:reconciliation_exception_detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "font-monospace"}},
    )
    kind = tables.Column(verbose_name="Class", orderable=False)
    match_key = tables.Column(
        verbose_name="Reference", orderable=False, attrs={"td": {"class": "font-monospace small"}}
    )
    psp = tables.Column(accessor="psp__name", verbose_name="PSP", orderable=False)
    theirs = tables.Column(accessor="pk", verbose_name="PSP says", orderable=False)
    ours = tables.Column(accessor="pk", verbose_name="We have", orderable=False)
    status = tables.Column(orderable=False)
    created_at = tables.Column(verbose_name="Found", orderable=False)

    class Meta:
        model = ReconciliationException
        fields = ()
        sequence = ("id", "kind", "match_key", "psp", "theirs", "ours", "status", "created_at")
        order_by = ("-id",)
        attrs = TABLE_ATTRS
        empty_text = (
            "No break matches these filters: every line of the reports you cover matched our "
            "payments, or the breaks were worked already."
        )

    def render_kind(self, value, record):
        return status_badge(value, record.get_kind_display())

    def render_theirs(self, record):
        return _side(record.psp_amount, record.psp_currency, record.psp_status)

    def render_ours(self, record):
        return _side(record.our_amount, record.our_currency, record.our_status)

    def render_status(self, value, record):
        return status_badge(value, record.get_status_display())

    def render_created_at(self, value, record):
        return format_html("{} · report #{}", reltime(value), record.report_id)


class ExceptionListView(ObjectListView):
    model = ReconciliationException
    permission_required = VIEW_EXCEPTIONS
    filterset_class = ExceptionFilterSet
    table_class = ExceptionTable
    template_name = "payments/reconciliation/exception_list.html"
    title = "Reconciliation exceptions"
    export_permission = VIEW_EXCEPTIONS
    export_fields = [
        ("id", "id"), ("class", "kind"), ("reference", "match_key"), ("psp", "psp__code"),
        ("merchant_reference", "merchant_reference"), ("psp_amount", "psp_amount"),
        ("psp_currency", "psp_currency"), ("psp_status", "psp_status"),
        ("our_amount", "our_amount"), ("our_currency", "our_currency"),
        ("our_status", "our_status"), ("status", "status"), ("report", "report_id"),
        ("created_at", "created_at"),
    ]  # fmt: skip

    def get_queryset(self):
        return super().get_queryset().select_related("psp")


class ResolveForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
        help_text="Why nothing (more) needs to change: the PSP will correct it, a timing "
        "difference, a duplicate line the PSP confirmed…",
    )  # fmt: skip


class AdjustForm(forms.Form):
    player = forms.IntegerField(label="Player id", min_value=1)
    balance = forms.ChoiceField(choices=BalanceKind.choices, initial=BalanceKind.CASH)
    direction = forms.ChoiceField(choices=Direction.choices)
    amount = forms.DecimalField(min_value=0, help_text="In the currency's units.")
    reason_code = forms.ChoiceField(
        choices=AdjustmentReason.choices, initial=AdjustmentReason.CORRECTION, label="Reason"
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)

    def __init__(self, *args, currency: str = "EUR", **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["amount"].help_text = f"In {currency}."
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs["class"] = css

    def clean_amount(self):
        value = self.cleaned_data["amount"]
        try:
            minor = to_minor(value, self.currency)
        except ValueError:
            raise forms.ValidationError(
                f"{self.currency} has {exponent_for(self.currency)} decimals."
            )
        if minor <= 0:
            raise forms.ValidationError("Type an amount above zero.")
        return minor


def suggested_adjustment(exc: ReconciliationException) -> dict:
    """A starting point for the correcting adjustment (staff check and change it)."""
    initial = {"player": exc.payment.player_id if exc.payment_id else None,
               "note": f"Reconciliation exception #{exc.pk}: {exc.get_kind_display().lower()} "
                       f"on {exc.match_key}."}  # fmt: skip
    currency = exc.our_currency or exc.psp_currency
    if exc.kind == Discrepancy.AMOUNT_MISMATCH and exc.psp_amount is not None:
        diff = exc.psp_amount - (exc.our_amount or 0)
        deposit = exc.psp_kind == "deposit"
        credit = (diff > 0) == deposit  # the PSP took more for a deposit: credit the player
        initial["direction"] = Direction.CREDIT if credit else Direction.DEBIT
        initial["amount"] = Decimal(abs(diff)).scaleb(-exponent_for(currency))
    return initial


def _exception_or_404(user, pk):
    qs = ReconciliationException.objects.restrict(user, "view").select_related(
        "psp", "report", "last_report", "payment", "payment__player", "resolved_by",
        "approval", "approval__requested_by", "adjustment",
    )  # fmt: skip
    return get_object_or_404(qs, pk=pk)


class ExceptionDetailView(StaffRequiredMixin, TemplateView):
    """Both sides of one break, its history, and the ways to close it."""

    permission_required = VIEW_EXCEPTIONS
    template_name = "payments/reconciliation/exception_detail.html"
    bound_forms: dict | None = None

    def get_context_data(self, **kwargs):
        user = self.request.user
        exc = _exception_or_404(user, self.kwargs["pk"])
        currency = exc.our_currency or exc.psp_currency or "EUR"
        forms_ = {
            "resolve_form": ResolveForm(),
            "adjust_form": AdjustForm(initial=suggested_adjustment(exc), currency=currency),
        }
        forms_.update(self.bound_forms or {})
        approval_open = exc.approval is not None and exc.approval.status == "pending"
        workable = exc.status == X.OPEN or (
            exc.status == X.ADJUSTMENT_PROPOSED and not approval_open
        )
        return super().get_context_data(
            title=f"Exception #{exc.pk} · {exc.get_kind_display()}",
            exc=exc,
            currency=currency,
            workable=workable,
            may_work=user.has_perm(services.WORK_PERMISSION),
            may_adjust=user.has_perm("payments.request_adjustment"),
            history=list(exc.history.select_related("history_user").order_by("-history_id")[:20]),
            **forms_,
            **kwargs,
        )


class ExceptionActionView(StaffRequiredMixin, View):
    http_method_names = ["post"]
    permission_required = services.WORK_PERMISSION
    form_name = ""

    def make_form(self, exc):
        raise NotImplementedError

    def run(self, exc, data) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        exc = _exception_or_404(request.user, self.kwargs["pk"])
        form = self.make_form(exc)
        if form.is_valid():
            try:
                message = self.run(exc, form.cleaned_data)
            except (BackofficeError, PermissionDenied) as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, message)
                return redirect("payments:reconciliation_exception_detail", pk=exc.pk)
        view = ExceptionDetailView(request=request, kwargs=self.kwargs)
        view.bound_forms = {self.form_name: form}
        response = TemplateResponse(request, view.template_name, view.get_context_data())
        response.status_code = 422
        return response


class ExceptionResolveView(ExceptionActionView):
    form_name = "resolve_form"

    def make_form(self, exc):
        return ResolveForm(self.request.POST)

    def run(self, exc, data):
        services.do_resolve_reconciliation_exception(
            exc.pk, acting_user=self.request.user, note=data["note"]
        )
        return f"Exception #{exc.pk} resolved."


class ExceptionAdjustView(ExceptionActionView):
    permission_required = (services.WORK_PERMISSION, "payments.request_adjustment")
    form_name = "adjust_form"

    def make_form(self, exc):
        currency = exc.our_currency or exc.psp_currency or "EUR"
        return AdjustForm(self.request.POST, currency=currency)

    def run(self, exc, data):
        player = players_for(self.request.user).filter(pk=data["player"]).first()
        if player is None:
            raise BackofficeError(f"No player #{data['player']} in the brands you cover.")
        req = services.do_propose_reconciliation_adjustment(
            exc.pk, acting_user=self.request.user, player=player, balance=data["balance"],
            direction=data["direction"], amount=data["amount"],
            reason_code=data["reason_code"], note=data["note"],
        )  # fmt: skip
        currency = exc.our_currency or exc.psp_currency
        return (
            f"Adjustment of {format_money(data['amount'], currency)} proposed: request "
            f"#{req.pk} waits for a second approver."
        )


# --------------------------------------------------------------------------------------------
# Home-page counter
# --------------------------------------------------------------------------------------------


def _open_exceptions(user) -> int:
    qs = ReconciliationException.objects.restrict(user, "view").filter(
        status__in=ReconciliationException.OPEN_STATUSES
    )
    return bounded_count(qs, 999)[0]


register_counter(
    QueueCounter(
        key="payments.reconciliation_exceptions",
        label="Open reconciliation exceptions",
        permission=VIEW_EXCEPTIONS,
        count=_open_exceptions,
        url_name="payments:reconciliation_exception_list",
        help="Breaks between the PSPs' settlement reports and our payments, to be worked.",
        order=42,
    )
)
