"""Forms of the support pages. They check input; the services decide and write."""

from __future__ import annotations

from django import forms

from backoffice.cached_choices import CachedModelChoiceField
from backoffice.models import Brand
from players.forms import BootstrapMixin

from .models import TEAM_CHOICES, Macro, Priority, Status, Ticket, TicketNote
from .selectors import eligible_assignees, macros_for, ticket_workers
from .services import BULK_ACTIONS, MAX_NOTE_LENGTH

BLANK = [("", "—")]


class TicketCreateForm(BootstrapMixin, forms.Form):
    subject = forms.CharField(max_length=200)
    category = forms.ChoiceField(choices=Ticket.Category.choices)
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)
    channel = forms.ChoiceField(choices=Ticket.Channel.choices, initial=Ticket.Channel.PHONE)
    team = forms.ChoiceField(choices=TEAM_CHOICES, initial="Support")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="What the player asked, in their words where it matters.",
    )
    is_dispute = forms.BooleanField(
        required=False, label="The player disputes an outcome (payment, game round, bonus)"
    )
    assign_to_me = forms.BooleanField(required=False, initial=True, label="Assign to me")
    object_type = forms.CharField(required=False, widget=forms.HiddenInput)
    object_id = forms.CharField(required=False, widget=forms.HiddenInput)


class TicketNoteForm(BootstrapMixin, forms.Form):
    kind = forms.ChoiceField(
        choices=[(k, v) for k, v in TicketNote.Kind.choices if k != TicketNote.Kind.SYSTEM],
        initial=TicketNote.Kind.INTERNAL,
        help_text="A reply records what the player was told; an internal note stays with staff.",
    )
    body = forms.CharField(
        label="Note", max_length=MAX_NOTE_LENGTH, widget=forms.Textarea(attrs={"rows": 4})
    )


class TicketStatusForm(BootstrapMixin, forms.Form):
    status = forms.ChoiceField(label="Move to")
    resolution_code = forms.ChoiceField(
        choices=BLANK + list(Ticket.Resolution.choices),
        required=False,
        help_text="Needed to resolve or close.",
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Internal note"
    )

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [
            (s, label) for s, label in Status.choices if s in ticket.allowed_statuses()
        ]

    def clean(self):
        data = super().clean()
        if data.get("status") in (Status.RESOLVED, Status.CLOSED) and not data.get(
            "resolution_code"
        ):
            self.add_error("resolution_code", "Choose how the ticket was resolved.")
        return data


class TicketAssignForm(BootstrapMixin, forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Nobody (unassigned)"
    )
    team = forms.ChoiceField(choices=TEAM_CHOICES)
    reason = forms.CharField(max_length=300, required=False)

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = eligible_assignees(ticket.brand_id)
        self.fields["assignee"].label_from_instance = lambda u: u.get_full_name() or u.username


class TicketPriorityForm(BootstrapMixin, forms.Form):
    priority = forms.ChoiceField(choices=Priority.choices)
    reason = forms.CharField(max_length=300, required=False)


class MacroApplyForm(BootstrapMixin, forms.Form):
    macro = forms.ModelChoiceField(queryset=None, empty_label="Choose a macro…")

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["macro"].queryset = macros_for(ticket)


class DisputeForm(BootstrapMixin, forms.Form):
    is_dispute = forms.BooleanField(required=False, label="This ticket is a dispute")
    outcome = forms.ChoiceField(choices=BLANK + list(Ticket.DisputeOutcome.choices), required=False)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Needed when you record an outcome.",
    )


class IdListField(forms.Field):
    """Ticket ids ticked in the table (`selected` checkboxes outside the form element)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        try:
            return sorted({int(v) for v in value})
        except (TypeError, ValueError):
            raise forms.ValidationError("Ticket ids are numbers.")


class BulkForm(BootstrapMixin, forms.Form):
    """The bulk bar above the queue table; ticket ids come from the row checkboxes."""

    action = forms.ChoiceField(choices=[("", "Action…"), *BULK_ACTIONS.items()])
    assignee = CachedModelChoiceField(
        queryset=None, required=False, empty_label="Assignee (for Assign)…"
    )
    priority = forms.ChoiceField(
        choices=[("", "Priority (for Set priority)…"), *Priority.choices], required=False
    )
    status = forms.ChoiceField(
        choices=[("", "Status (for Set status)…"), *Status.choices], required=False
    )
    resolution_code = forms.ChoiceField(
        choices=[("", "Resolution (to resolve or close)…"), *Ticket.Resolution.choices],
        required=False,
    )
    selected = IdListField(error_messages={"required": "Tick at least one ticket."})
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Every ticket worker; the service checks each one covers each ticket's brand.
        self.fields["assignee"].queryset = ticket_workers()
        for name in ("action", "assignee", "priority", "status", "resolution_code"):
            self.fields[name].widget.attrs["class"] += " form-select-sm w-auto"


class MacroForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = Macro
        fields = ["name", "body", "note_kind", "set_status", "set_resolution_code",
                  "set_priority", "set_team", "brand", "is_active"]  # fmt: skip
        widgets = {"body": forms.Textarea(attrs={"rows": 5})}
        labels = {"brand": "Only for brand", "note_kind": "Adds"}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = Brand.objects.in_brands(user)
        self.fields["brand"].empty_label = "Every brand"
        self.fields["is_active"].widget.attrs["class"] = "form-check-input"

    def validate_unique(self):
        """Uniqueness (whatever the case) is the service's to check and explain."""
