"""Payments pages: transactions, ledger, accounts, PSPs and their callbacks, thresholds, and the
adjustment, refund, reversal and chargeback forms.

Views validate and translate: forms check input, services decide and write, and a service's
error comes back beside the form (or as a 403/404 when the role or brand does not allow it).
"""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import DetailView, FormView, TemplateView

from backoffice.links import object_url
from backoffice.models import ApprovalRequest
from backoffice.money import format_money
from backoffice.views_base import ObjectListView, ScopedDetailView, StaffRequiredMixin
from players.models import Player

from . import selectors
from .choices import Correction
from .exceptions import PaymentsError
from .filtersets import (
    AccountFilterSet,
    LedgerEntryFilterSet,
    PaymentFilterSet,
    PaymentMethodFilterSet,
    PspEventFilterSet,
    RejectionFilterSet,
)
from .forms import AdjustmentForm, CorrectionForm, SwitchForm, ThresholdForm
from .models import (
    Account,
    ApprovalThreshold,
    Currency,
    Deposit,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentMethod,
    Psp,
    PspInboxEvent,
    PspWebhookRejection,
)
from .services import config, corrections
from .tables import (
    AccountTable,
    LedgerEntryTable,
    PaymentMethodTable,
    PaymentTable,
    PspEventTable,
    RejectionTable,
)

# --------------------------------------------------------------------------------------------
# Transactions (deposits and withdrawals)
# --------------------------------------------------------------------------------------------


class PaymentAccessMixin:
    """Deposits and withdrawals: a user who may see either kind gets in; rows are narrowed to
    the kinds and brands they may see (`selectors.payments_for`)."""

    def get_permissions(self) -> list[str]:
        return []

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and user.is_active and not selectors.visible_kinds(user):
            raise PermissionDenied("Your role does not show deposits or withdrawals.")
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.payments_for(self.request.user)


class PaymentListView(PaymentAccessMixin, ObjectListView):
    """Deposits and withdrawals together, newest first, filtered from the query string."""

    model = Payment
    filterset_class = PaymentFilterSet
    table_class = PaymentTable
    title = "Transactions"
    export_fields = [
        ("id", "id"),
        ("created_at", "created_at"),
        ("kind", "kind"),
        ("brand", "brand__code"),
        ("player_id", "player_id"),
        ("player_ref", "player__external_ref"),
        ("psp", "psp__code"),
        ("method", "method_kind"),
        ("country", "country"),
        ("currency", "currency_id"),
        ("amount_minor", "amount"),
        ("status", "status"),
        ("status_reason", "status_reason"),
        ("reference", "reference"),
        ("psp_reference", "psp_reference"),
    ]

    def get_queryset(self):
        # Brand and PSP are a handful of rows, joined for free; the player is fetched in one
        # query for the page's rows only. Joined, PostgreSQL would probe players_player for
        # every row the page skips over (2,500 random lookups on page 50), not just the 51 shown.
        shown = Prefetch("player", queryset=Player.objects.only("id", "username"))
        return super().get_queryset().select_related("psp", "brand").prefetch_related(shown)


class PaymentDetailView(PaymentAccessMixin, StaffRequiredMixin, DetailView):
    """One deposit or withdrawal: the "where is the money" line, the status timeline, the
    ledger entries it made, the raw PSP callbacks, and the actions the user may take."""

    template_name = "payments/payment_detail.html"
    context_object_name = "payment"

    def get_queryset(self):
        return super().get_queryset().select_related("player", "psp", "brand", "method")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        payment = self.object
        user = self.request.user
        subject = payment.as_kind()
        ledger = []
        if user.has_perm("payments.view_ledgerentry"):
            ledger = list(
                selectors.ledger_transactions_for_payment(payment).prefetch_related(
                    "entries__account"
                )
            )
        events = []
        if user.has_perm("payments.view_pspinboxevent"):
            events = list(selectors.psp_events_for_payment(payment))
        corrections_allowed = []
        if payment.is_deposit and user.has_perm("payments.refund_deposit"):
            corrections_allowed = [
                (op.value, op.label)
                for op in Correction
                if payment.can_transition(corrections.CORRECTION_STATUS[op])
            ]
        context.update(
            title=f"{payment.get_kind_display()} {payment.reference}",
            subject=subject,
            where=selectors.where_is_the_money(
                payment,
                taken=selectors.chargeback_taken(payment)
                if payment.status == payment.Status.CHARGED_BACK
                else None,
            ),
            transitions=list(payment.transitions.select_related("actor", "psp_event")),
            ledger_transactions=ledger,
            events=events,
            approvals=list(selectors.pending_approvals_for(subject).select_related("requested_by")),
            corrections=corrections_allowed,
            player_url=object_url("players.player", payment.player_id),
        )
        return context


class DepositCorrectionView(StaffRequiredMixin, FormView):
    """Refund, reverse or record a chargeback on a credited deposit (four eyes above the
    currency's threshold)."""

    permission_required = "payments.refund_deposit"
    form_class = CorrectionForm
    template_name = "payments/correction_form.html"

    def dispatch(self, request, *args, **kwargs):
        if kwargs["operation"] not in Correction.values:
            raise Http404("Unknown operation.")
        return super().dispatch(request, *args, **kwargs)

    def get_deposit(self) -> Payment:
        if not hasattr(self, "_deposit"):
            qs = Deposit.objects.restrict(self.request.user, "refund").select_related("psp")
            self._deposit = get_object_or_404(qs, pk=self.kwargs["pk"])
        return self._deposit

    def get_context_data(self, **kwargs):
        deposit = self.get_deposit()
        operation = Correction(self.kwargs["operation"])
        threshold = corrections.approval_threshold(deposit.currency_id)
        return super().get_context_data(
            title=f"{operation.label} of deposit {deposit.reference}",
            deposit=deposit,
            operation=operation,
            needs_approval=corrections.needs_approval(deposit.currency_id, deposit.amount),
            threshold=None if threshold is None else format_money(threshold, deposit.currency_id),
            cancel_url=reverse("payments:transaction_detail", kwargs={"pk": deposit.pk}),
            submit_label=operation.label,
            **kwargs,
        )

    def form_valid(self, form):
        deposit = self.get_deposit()
        try:
            result = corrections.do_request_deposit_correction(
                deposit.pk,
                operation=self.kwargs["operation"],
                reason_code=form.cleaned_data["reason_code"],
                note=form.cleaned_data["note"],
                acting_user=self.request.user,
            )
        except PaymentsError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        _say_done(self.request, result)
        return redirect("payments:transaction_detail", pk=deposit.pk)


def _say_done(request, result) -> None:
    if isinstance(result, ApprovalRequest):
        messages.info(
            request,
            f"Sent for approval as request #{result.pk}: a second member of staff must approve it.",
        )
    else:
        messages.success(request, "Done.")


# --------------------------------------------------------------------------------------------
# Ledger and accounts
# --------------------------------------------------------------------------------------------


class LedgerEntryListView(ObjectListView):
    """Every ledger entry in the user's brands, newest first."""

    model = LedgerEntry
    filterset_class = LedgerEntryFilterSet
    table_class = LedgerEntryTable
    title = "Ledger entries"
    export_fields = [
        ("id", "id"),
        ("created_at", "created_at"),
        ("transaction_id", "transaction_id"),
        ("transaction_kind", "transaction__kind"),
        ("account_id", "account_id"),
        ("account_kind", "account__kind"),
        ("player_id", "player_id"),
        ("currency", "currency_id"),
        ("amount_minor", "amount"),
        ("balance_after_minor", "balance_after"),
    ]

    def get_queryset(self):
        return super().get_queryset().select_related("transaction", "account")


class LedgerTransactionDetailView(ScopedDetailView):
    """One ledger transaction with its entries, what it corrects and what corrected it."""

    model = LedgerTransaction
    template_name = "payments/ledger_transaction_detail.html"
    context_object_name = "txn"

    def get_queryset(self):
        return super().get_queryset().select_related("created_by", "reverses", "approval")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        txn = self.object
        user = self.request.user
        reversed_by = LedgerTransaction.objects.filter(reverses=txn).first()
        context.update(
            title=f"Ledger transaction #{txn.pk}",
            entries=list(txn.entries.select_related("account").order_by("id")),
            reversed_by=reversed_by,
            subject_url=object_url(txn.object_type, txn.object_id) if txn.object_type else None,
            player_url=object_url("players.player", txn.player_id) if txn.player_id else None,
            approval_url=object_url("backoffice.approvalrequest", txn.approval_id)
            if txn.approval_id
            else None,
            can_reverse=(
                txn.kind == LedgerTransaction.Kind.ADJUSTMENT
                and reversed_by is None
                and user.has_perm("payments.request_adjustment")
            ),
        )
        return context


class LedgerReversalView(StaffRequiredMixin, FormView):
    """Reverse a manual adjustment made in error (four eyes above the threshold)."""

    permission_required = "payments.request_adjustment"
    form_class = CorrectionForm
    template_name = "payments/correction_form.html"

    def get_txn(self) -> LedgerTransaction:
        if not hasattr(self, "_txn"):
            qs = LedgerTransaction.objects.restrict(self.request.user, "view").filter(
                kind=LedgerTransaction.Kind.ADJUSTMENT
            )
            self._txn = get_object_or_404(qs, pk=self.kwargs["pk"])
        return self._txn

    def get_context_data(self, **kwargs):
        txn = self.get_txn()
        return super().get_context_data(
            title=f"Reverse adjustment #{txn.pk}",
            txn=txn,
            cancel_url=reverse("payments:ledger_transaction_detail", kwargs={"pk": txn.pk}),
            submit_label="Reverse",
            **kwargs,
        )

    def form_valid(self, form):
        txn = self.get_txn()
        try:
            result = corrections.do_request_ledger_reversal(
                txn.pk,
                reason_code=form.cleaned_data["reason_code"],
                note=form.cleaned_data["note"],
                acting_user=self.request.user,
            )
        except PaymentsError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        _say_done(self.request, result)
        return redirect("payments:ledger_transaction_detail", pk=txn.pk)


class AccountListView(ObjectListView):
    """Balances of house accounts (PSP clearing, providers, bonus cost, fees, losses) and
    player wallets, with a link to each account's entries."""

    model = Account
    permission_required = ["payments.view_account", "payments.view_ledgerentry"]
    filterset_class = AccountFilterSet
    table_class = AccountTable
    title = "Accounts"

    def get_queryset(self):
        return super().get_queryset().select_related("brand")


class AdjustmentCreateView(StaffRequiredMixin, FormView):
    """Credit or debit a player's cash or bonus balance with a reason (four eyes above the
    currency's threshold)."""

    permission_required = "payments.request_adjustment"
    form_class = AdjustmentForm
    template_name = "payments/adjustment_form.html"

    def get_player(self) -> Player:
        if not hasattr(self, "_player"):
            qs = Player.objects.restrict(self.request.user, "view")
            self._player = get_object_or_404(qs, pk=self.kwargs["pk"])
        return self._player

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "player": self.get_player()}

    def get_context_data(self, **kwargs):
        player = self.get_player()
        thresholds = {
            t.currency_id: format_money(t.amount, t.currency_id)
            for t in ApprovalThreshold.objects.all()
        }
        return super().get_context_data(
            title=f"Adjust the balance of {player.username}",
            player=player,
            wallet=selectors.wallet_rows(player),
            thresholds=thresholds,
            cancel_url=object_url("players.player", player.pk),
            submit_label="Adjust",
            **kwargs,
        )

    def form_valid(self, form):
        player = self.get_player()
        data = form.cleaned_data
        try:
            result = corrections.do_request_adjustment(
                player,
                currency=data["currency"],
                balance=data["balance"],
                direction=data["direction"],
                amount=data["amount_minor"],
                reason_code=data["reason_code"],
                note=data["note"],
                acting_user=self.request.user,
                idempotency_key=data["idempotency_key"],
            )
        except PermissionDenied:
            raise
        except PaymentsError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        _say_done(self.request, result)
        return redirect(object_url("players.player", player.pk) or "payments:transaction_list")


# --------------------------------------------------------------------------------------------
# PSPs, payment methods and their callbacks
# --------------------------------------------------------------------------------------------


class PaymentMethodListView(ObjectListView):
    """Every PSP and payment method of the user's brands with their on/off switches."""

    model = PaymentMethod
    permission_required = ["payments.view_psp", "payments.view_paymentmethod"]
    filterset_class = PaymentMethodFilterSet
    title = "PSPs and payment methods"
    count_rows = True

    @property
    def table_class(self):
        can = self.request.user.has_perm("payments.change_psp") and self.request.user.has_perm(
            "payments.change_paymentmethod"
        )
        return partial(PaymentMethodTable, can_switch=can)

    def get_queryset(self):
        return super().get_queryset().select_related("psp").order_by("psp__name", "kind", "id")


class SwitchView(StaffRequiredMixin, FormView):
    """Switch a PSP or one payment method on or off, with a reason."""

    form_class = SwitchForm
    template_name = "payments/switch_form.html"
    model = None
    service = None

    def get_object(self):
        if not hasattr(self, "_object"):
            qs = self.model.objects.restrict(self.request.user, "change")
            self._object = get_object_or_404(qs, pk=self.kwargs["pk"])
        return self._object

    def get_context_data(self, **kwargs):
        obj = self.get_object()
        verb = "Switch off" if obj.is_enabled else "Switch on"
        return super().get_context_data(
            title=f"{verb} {obj}",
            object=obj,
            cancel_url=reverse("payments:psp_list"),
            submit_label=verb,
            **kwargs,
        )

    def form_valid(self, form):
        obj = self.get_object()
        try:
            self.service(
                obj.pk,
                enabled=not obj.is_enabled,
                reason=form.cleaned_data["reason"],
                acting_user=self.request.user,
            )
        except PaymentsError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"{obj} is now {'off' if obj.is_enabled else 'on'}.")
        return redirect("payments:psp_list")


class PspSwitchView(SwitchView):
    permission_required = "payments.change_psp"
    model = Psp
    service = staticmethod(config.do_set_psp_enabled)


class MethodSwitchView(SwitchView):
    permission_required = "payments.change_paymentmethod"
    model = PaymentMethod
    service = staticmethod(config.do_set_method_enabled)


class PspEventListView(ObjectListView):
    """The webhook inbox: every stored callback, whether it was applied, and why not."""

    model = PspInboxEvent
    filterset_class = PspEventFilterSet
    table_class = PspEventTable
    title = "PSP callbacks"

    def get_queryset(self):
        return super().get_queryset().select_related("psp")


class RejectionListView(ObjectListView):
    """Webhook deliveries refused at the door (bad or stale signatures, unknown PSPs)."""

    model = PspWebhookRejection
    filterset_class = RejectionFilterSet
    table_class = RejectionTable
    title = "Refused PSP callbacks"


# --------------------------------------------------------------------------------------------
# Approval thresholds
# --------------------------------------------------------------------------------------------


class ThresholdListView(StaffRequiredMixin, TemplateView):
    """Per currency: above which amount corrections need a second approver."""

    permission_required = "payments.view_approvalthreshold"
    template_name = "payments/threshold_list.html"

    def get_context_data(self, **kwargs):
        thresholds = {t.currency_id: t for t in ApprovalThreshold.objects.all()}
        rows = [
            (currency, thresholds.get(currency.code))
            for currency in Currency.objects.order_by("code")
        ]
        return super().get_context_data(title="Approval thresholds", rows=rows, **kwargs)


class ThresholdEditView(StaffRequiredMixin, FormView):
    permission_required = "payments.change_approvalthreshold"
    form_class = ThresholdForm
    template_name = "layouts/form.html"

    def get_currency(self) -> Currency:
        return get_object_or_404(Currency, pk=self.kwargs["currency"].upper())

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        currency = self.get_currency()
        kwargs["currency"] = currency.code
        current = ApprovalThreshold.objects.filter(currency=currency).first()
        if current is not None and "data" not in kwargs:
            from backoffice.money import to_decimal

            kwargs["initial"] = {"amount": to_decimal(current.amount, currency.code)}
        return kwargs

    def get_context_data(self, **kwargs):
        currency = self.get_currency()
        return super().get_context_data(
            title=f"Approval threshold for {currency.code}",
            cancel_url=reverse("payments:threshold_list"),
            submit_label="Save threshold",
            **kwargs,
        )

    def form_valid(self, form):
        currency = self.get_currency()
        try:
            config.do_set_approval_threshold(
                currency.code,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                acting_user=self.request.user,
            )
        except PaymentsError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"Threshold for {currency.code} saved.")
        return redirect("payments:threshold_list")
