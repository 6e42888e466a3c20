"""Forms of the payments pages. Amounts are typed in major units and converted to minor units
with the currency's exponent; anything finer than the currency allows is refused."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms

from backoffice.money import exponent_for, format_money, to_minor

from .choices import AdjustmentReason, BalanceKind, CorrectionReason, Direction
from .models import Currency


class BootstrapMixin:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.RadioSelect):
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select | forms.SelectMultiple):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


def note_field(help_text: str) -> forms.CharField:
    return forms.CharField(
        max_length=1000, widget=forms.Textarea(attrs={"rows": 3}), help_text=help_text
    )


class AmountMixin:
    """Turns the `amount` field (major units) into `amount_minor` for the chosen currency."""

    def currency_code(self) -> str:
        raise NotImplementedError

    def clean_amount_in(self, amount: Decimal, code: str) -> int:
        try:
            minor = to_minor(amount, code)
        except ValueError:
            decimals = exponent_for(code)
            raise forms.ValidationError(
                f"{code} has {decimals} decimal{'s' if decimals != 1 else ''}; "
                f"type at most that many."
            )
        if minor <= 0:
            raise forms.ValidationError("Type an amount above zero.")
        return minor


class AdjustmentForm(BootstrapMixin, AmountMixin, forms.Form):
    currency = forms.ChoiceField(help_text="The wallet currency to adjust.")
    balance = forms.ChoiceField(choices=BalanceKind.choices, widget=forms.RadioSelect)
    direction = forms.ChoiceField(choices=Direction.choices, widget=forms.RadioSelect)
    amount = forms.DecimalField(
        min_value=Decimal("0"), max_digits=24, decimal_places=8,
        help_text="In major units, e.g. 25.50 for 25.50 EUR.",
    )  # fmt: skip
    reason_code = forms.ChoiceField(choices=AdjustmentReason.choices, label="Reason")
    note = note_field("Why, in words: it goes on the ledger, the audit trail and the timeline.")
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, player, **kwargs):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("currency", player.currency)
        kwargs["initial"].setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        codes = list(Currency.objects.values_list("code", flat=True))
        self.fields["currency"].choices = [(c, c) for c in codes]

    def clean(self):
        data = super().clean()
        if "amount" in data and "currency" in data:
            try:
                data["amount_minor"] = self.clean_amount_in(data["amount"], data["currency"])
            except forms.ValidationError as exc:
                self.add_error("amount", exc)
        return data


class CorrectionForm(BootstrapMixin, forms.Form):
    reason_code = forms.ChoiceField(choices=CorrectionReason.choices, label="Reason")
    note = note_field("What happened and who asked for it.")


class SwitchForm(BootstrapMixin, forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown beside the switch and kept on the audit trail.",
    )


class ThresholdForm(BootstrapMixin, AmountMixin, forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0"), max_digits=24, decimal_places=8,
        help_text="In major units. Corrections strictly above it need a second approver.",
    )  # fmt: skip
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.code = currency

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        try:
            return to_minor(amount, self.code)
        except ValueError:
            raise forms.ValidationError(
                f"{self.code} has {exponent_for(self.code)} decimals; type at most that many."
            )

    def describe(self, minor: int) -> str:
        return format_money(minor, self.code)
