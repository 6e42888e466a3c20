"""Forms of the players pages. They check input; the services decide and write."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms

from .models import NoteReason, Player, Tag
from .selectors import TimelineCursor
from .services import MAX_NOTE_LENGTH, MAX_REASON_LENGTH, status_permission
from .timeline import KINDS

Status = Player.Status

STATUS_VERBS = {
    Status.ACTIVE: "Reactivate",
    Status.SUSPENDED: "Suspend",
    Status.BLOCKED: "Block",
    Status.CLOSED: "Close",
    Status.SELF_EXCLUDED: "Self-exclude",
}


class BootstrapMixin:
    """Bootstrap classes on every widget, so templates render `{{ field }}` as is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select | forms.SelectMultiple):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


def reason_field(**kwargs) -> forms.CharField:
    return forms.CharField(
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Goes on the player's record, the audit trail and the timeline.",
        **kwargs,
    )


class PlayerStatusForm(BootstrapMixin, forms.Form):
    """The target status (only moves the map allows) and a reason."""

    status = forms.ChoiceField(label="New status")
    reason = reason_field()

    def __init__(self, *args, player: Player, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.player = player
        choices = []
        for target in Status.values:
            if target not in player.allowed_statuses():
                continue
            if user.has_perm(status_permission(player.status, target)):
                choices.append((target, f"{STATUS_VERBS[target]} ({Status(target).label})"))
        self.fields["status"].choices = choices
        self.has_choices = bool(choices)


class PlayerRestrictionsForm(BootstrapMixin, forms.Form):
    """One checkbox per restriction, starting from the player's current values."""

    reason = reason_field()

    def __init__(self, *args, player: Player, **kwargs):
        super().__init__(*args, **kwargs)
        fields = {}
        for name, label in Player.RESTRICTIONS.items():
            fields[name] = forms.BooleanField(
                label=label, required=False, initial=getattr(player, name)
            )
        # Checkboxes first, the reason last.
        self.fields = {**fields, "reason": self.fields["reason"]}
        for name in Player.RESTRICTIONS:
            self.fields[name].widget.attrs["class"] = "form-check-input"

    def changes(self) -> dict[str, bool]:
        return {name: self.cleaned_data[name] for name in Player.RESTRICTIONS}


class PlayerNoteForm(BootstrapMixin, forms.Form):
    """A reason code and the note; choosing a reason pre-fills its template."""

    reason = forms.ModelChoiceField(queryset=NoteReason.objects.none(), label="Reason code")
    body = forms.CharField(
        label="Note",
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Facts, what the player was told, what happens next. Players never see it.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        reasons = NoteReason.objects.filter(is_active=True)
        if not user.has_perm("players.view_risk_notes"):
            reasons = reasons.filter(category=NoteReason.Category.GENERAL)
        self.fields["reason"].queryset = reasons
        self.fields["reason"].label_from_instance = lambda r: (
            f"{r.label} (risk note)" if r.category == NoteReason.Category.RISK else r.label
        )
        self.templates = {str(r.pk): r.template for r in reasons}


class PlayerTagForm(BootstrapMixin, forms.Form):
    tag = forms.ModelChoiceField(queryset=Tag.objects.all(), label="Add a tag")

    def __init__(self, *args, player: Player, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].queryset = Tag.objects.exclude(player_tags__player=player)


class TagForm(BootstrapMixin, forms.Form):
    name = forms.CharField(max_length=50)
    description = forms.CharField(max_length=200, required=False)
    colour = forms.ChoiceField(choices=Tag.Colour.choices)


class TimelineFilterForm(BootstrapMixin, forms.Form):
    """Kind and date filters of the timeline, plus the keyset position."""

    kind = forms.MultipleChoiceField(required=False, label="Kinds")
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = list(KINDS.items())
        self.fields["kind"].widget.attrs["size"] = min(len(KINDS), 6)

    def clean_cursor(self):
        raw = self.cleaned_data["cursor"]
        if not raw:
            return None
        try:
            return TimelineCursor.decode(raw)
        except ValueError:
            raise forms.ValidationError("That position in the timeline is not valid.")

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """[since, until) in UTC: whole days, the end date included."""
        start, end = self.cleaned_data.get("date_from"), self.cleaned_data.get("date_to")
        since = datetime.combine(start, time.min, tzinfo=UTC) if start else None
        until = datetime.combine(end, time.min, tzinfo=UTC) + timedelta(days=1) if end else None
        return since, until
