from django import forms

from .models import SavedFilter


class SavedFilterForm(forms.ModelForm):
    class Meta:
        model = SavedFilter
        fields = ["list_name", "name", "query"]
