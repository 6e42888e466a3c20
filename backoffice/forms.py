from django import forms

from .models import SavedFilter


class SavedFilterForm(forms.ModelForm):
    class Meta:
        model = SavedFilter
        fields = ["list_name", "name", "query"]


def compact_widgets(form: forms.Form) -> None:
    """Give a form's widgets Bootstrap's small controls, keeping any class they already have
    (filter bars and the queue's inline action forms render bare `{{ field }}`)."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, forms.Select | forms.SelectMultiple):
            css = "form-select form-select-sm"
        else:
            css = "form-control form-control-sm"
        widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
