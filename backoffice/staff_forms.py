"""Forms of the sign-in pages and of staff, role and brand administration.

Every form lists its fields explicitly: whatever else is posted (`is_superuser`, `is_staff`,
`user_permissions`…) is ignored. Forms only validate; the services in `staff_services` write.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group, Permission
from guardian.models import UserObjectPermission

from .models import Brand, User
from .scoping import BRAND_PERMISSION, brand_ids_for
from .staff_selectors import editable_permissions


class BootstrapMixin:
    """Gives each widget Bootstrap's class, so `partials/_form_fields.html` renders it well."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxSelectMultiple | forms.RadioSelect):
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select | forms.SelectMultiple):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
                widget.attrs["aria-invalid"] = "true"


REASON_HELP = "Kept in the audit trail and the change history. Say why, for whoever reads it later."


def reason_field(required: bool = True, label: str = "Reason") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=REASON_HELP,
    )


# --- sign-in -------------------------------------------------------------------------------


class SignInForm(BootstrapMixin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "That username and password do not match an active account. Check both and try "
            "again; after 10 failed attempts sign-in is locked for 30 minutes."
        ),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username", autofocus=True)
        self.fields["password"].widget.attrs.update(autocomplete="current-password")


class OTPCodeForm(BootstrapMixin, forms.Form):
    code = forms.CharField(
        label="6-digit code",
        max_length=12,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "autofocus": True,
                "pattern": r"[0-9 ]{6,7}",
                "size": 8,
            }
        ),
        help_text="The code your authenticator app shows now. It changes every 30 seconds.",
    )

    def clean_code(self) -> str:
        code = re.sub(r"\s", "", self.cleaned_data["code"])
        if not re.fullmatch(r"\d{6}", code):
            raise forms.ValidationError("Enter the 6 digits your app shows, without letters.")
        return code


class OwnPasswordForm(BootstrapMixin, forms.Form):
    """Choose a new password; the current one is asked unless it was a one-time password."""

    old_password = forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password1 = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 12 characters; not a common password, not only digits, not like "
        "your name or username.",
    )
    new_password2 = forms.CharField(
        label="New password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, user, *args, ask_old: bool = True, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        if not ask_old:
            del self.fields["old_password"]

    def clean_old_password(self):
        value = self.cleaned_data["old_password"]
        if not self.user.check_password(value):
            raise forms.ValidationError("That is not your current password.")
        return value

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("new_password1"), data.get("new_password2")
        if p1 and p2 and p1 != p2:
            self.add_error("new_password2", "The two passwords differ. Type the same twice.")
        elif p1:
            if p1 == data.get("old_password"):
                self.add_error("new_password1", "Choose a password different from the current.")
            try:
                password_validation.validate_password(p1, self.user)
            except forms.ValidationError as exc:
                self.add_error("new_password1", exc)
        return data


# --- staff ---------------------------------------------------------------------------------


class RoleChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        return obj.name


def _brand_queryset(acting_user):
    ids = brand_ids_for(acting_user)
    qs = Brand.objects.order_by("name")
    return qs if ids is None else qs.filter(pk__in=ids)


class StaffFieldsMixin(forms.Form):
    roles = RoleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        help_text="What they may do. A role's permissions are on the roles page.",
    )
    brands = forms.ModelMultipleChoiceField(
        queryset=Brand.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Which brands' data they work with. You can grant only brands you hold.",
    )

    def setup_scope(self, acting_user):
        self.fields["brands"].queryset = _brand_queryset(acting_user)
        if brand_ids_for(acting_user) is not None:
            # Only staff who cover every brand may hand out a role that does.
            app_label, codename = BRAND_PERMISSION.split(".")
            self.fields["roles"].queryset = Group.objects.exclude(
                permissions__content_type__app_label=app_label, permissions__codename=codename
            ).order_by("name")


class StaffCreateForm(BootstrapMixin, StaffFieldsMixin, forms.ModelForm):
    PASSWORD_CHOICES = [
        ("generate", "Generate a one-time password, shown once; they choose their own at sign-in"),
        ("set", "Set a password now"),
    ]
    password_mode = forms.ChoiceField(
        label="Password", choices=PASSWORD_CHOICES, initial="generate", widget=forms.RadioSelect
    )
    password = forms.CharField(
        label="Password to set",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Only when setting one now. At least 12 characters.",
    )
    reason = reason_field(required=False, label="Note (optional)")

    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email"]

    field_order = [
        "username", "first_name", "last_name", "email", "roles", "brands",
        "password_mode", "password", "reason",
    ]  # fmt: skip

    def __init__(self, *args, acting_user, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_scope(acting_user)
        self.fields["email"].required = True
        self.fields["first_name"].required = True
        self.fields["last_name"].required = True

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("Another member of staff already has this email.")
        return email

    def clean(self):
        data = super().clean()
        if data.get("password_mode") == "set":
            password = data.get("password")
            if not password:
                self.add_error("password", "Type the password to set, or choose to generate one.")
            else:
                candidate = User(
                    username=data.get("username", ""),
                    email=data.get("email", ""),
                    first_name=data.get("first_name", ""),
                    last_name=data.get("last_name", ""),
                )
                try:
                    password_validation.validate_password(password, candidate)
                except forms.ValidationError as exc:
                    self.add_error("password", exc)
        return data


class StaffEditForm(BootstrapMixin, StaffFieldsMixin, forms.Form):
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    email = forms.EmailField()
    reason = reason_field()

    field_order = ["first_name", "last_name", "email", "roles", "brands", "reason"]

    def __init__(self, *args, target: User, acting_user, **kwargs):
        self.target = target
        super().__init__(*args, **kwargs)
        self.setup_scope(acting_user)
        if target.pk == acting_user.pk:
            # Four eyes: one's own roles and brands are changed by another admin.
            del self.fields["roles"]
            del self.fields["brands"]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.target.pk).exists():
            raise forms.ValidationError("Another member of staff already has this email.")
        return email


class ReasonForm(BootstrapMixin, forms.Form):
    reason = reason_field()


class StaffPasswordForm(BootstrapMixin, forms.Form):
    password_mode = StaffCreateForm.base_fields["password_mode"]
    password = StaffCreateForm.base_fields["password"]
    reason = reason_field()

    def __init__(self, *args, target: User, **kwargs):
        self.target = target
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if data.get("password_mode") == "set":
            if not data.get("password"):
                self.add_error("password", "Type the password to set, or choose to generate one.")
            else:
                try:
                    password_validation.validate_password(data["password"], self.target)
                except forms.ValidationError as exc:
                    self.add_error("password", exc)
        return data


# --- roles ---------------------------------------------------------------------------------


class RoleCreateForm(BootstrapMixin, forms.Form):
    name = forms.CharField(max_length=150, help_text="Shown on staff pages, e.g. “VIP support”.")
    copy_from = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        empty_label="— start with no permissions —",
        help_text="Start from an existing role's permissions, then adjust them.",
    )
    reason = reason_field()

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Group.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError("A role with this name exists already.")
        return name


class RolePermissionsForm(BootstrapMixin, forms.Form):
    permissions = forms.ModelMultipleChoiceField(
        queryset=Permission.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    reason = reason_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["permissions"].queryset = editable_permissions()


# --- brands --------------------------------------------------------------------------------


class BrandForm(BootstrapMixin, forms.ModelForm):
    jurisdiction = forms.CharField(
        max_length=8, help_text="ISO country code of the licence, e.g. MT."
    )
    reason = reason_field(required=False, label="Note (optional)")

    class Meta:
        model = Brand
        fields = ["code", "name", "jurisdiction", "default_currency", "is_active"]
        help_texts = {
            "code": "Short, lowercase, permanent: other systems and URLs key on it.",
            "default_currency": "ISO 4217 code, e.g. EUR.",
        }

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["code"].disabled = True
            self.fields["reason"].required = True
            self.fields["reason"].label = "Reason"

    def clean_jurisdiction(self):
        value = self.cleaned_data["jurisdiction"].strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise forms.ValidationError("Two letters, the ISO country code, e.g. MT.")
        return value

    def clean_default_currency(self):
        value = self.cleaned_data["default_currency"].strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{3,8}", value):
            raise forms.ValidationError("A currency code such as EUR or USDT.")
        return value


class BrandGrantForm(BootstrapMixin, forms.Form):
    user = forms.ModelChoiceField(
        queryset=User.objects.none(), label="Member of staff", empty_label="— choose —"
    )
    reason = reason_field()

    def __init__(self, *args, brand: Brand, **kwargs):
        super().__init__(*args, **kwargs)
        holders = UserObjectPermission.objects.filter(
            permission__codename="access_brand",
            content_type__app_label="backoffice",
            content_type__model="brand",
            object_pk=str(brand.pk),
        ).values("user_id")
        self.fields["user"].queryset = (
            User.objects.filter(is_active=True).exclude(pk__in=holders).order_by("username")
        )
