"""Tables of the staff, role and brand lists."""

from __future__ import annotations

import django_tables2 as tables
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import roles as seeded_roles
from .models import Brand, User
from .staff_selectors import brands_by_user
from .templatetags.ui import reltime, status_badge

TABLE_ATTRS = {"class": "table table-sm table-hover align-middle", "data-keyboard-rows": ""}


def _link(url_name: str, pk: int, text) -> str:
    return format_html('<a href="{}">{}</a>', reverse(url_name, kwargs={"pk": pk}), text)


class StaffTable(tables.Table):
    id = tables.Column(verbose_name="Id", attrs={"td": {"class": "id-col"}})
    username = tables.Column(verbose_name="Username")
    name = tables.Column(
        verbose_name="Name", accessor="last_name", order_by=("last_name", "first_name")
    )
    email = tables.Column(verbose_name="Email")
    roles = tables.Column(verbose_name="Roles", accessor="pk", orderable=False)
    brands = tables.Column(verbose_name="Brands", accessor="pk", orderable=False)
    otp_enrolled = tables.Column(verbose_name="Second factor")
    is_active = tables.Column(verbose_name="Status")
    last_login = tables.Column(verbose_name="Last sign-in")

    class Meta:
        model = User
        fields = ()
        order_by = ("username",)
        attrs = TABLE_ATTRS
        empty_text = (
            "No member of staff matches these filters. Clear them to see everyone, or add "
            "someone with “New member of staff”."
        )

    def before_render(self, request):
        # One query for the brands of the page's rows, not one per row.
        page = getattr(self, "page", None)
        records = [row.record for row in page.object_list] if page else list(self.data)
        self._brands = brands_by_user(records)

    def render_username(self, record, value):
        return _link("backoffice:staff_detail", record.pk, value)

    def render_name(self, record):
        return record.get_full_name() or "—"

    def render_roles(self, record):
        groups = sorted(record.groups.all(), key=lambda g: g.name)
        if not groups:
            return mark_safe('<span class="text-body-secondary">none</span>')  # noqa: S308 - a constant
        return format_html_join(", ", "{}", ((g.name,) for g in groups))

    def render_brands(self, record):
        if record.all_brands:
            return mark_safe('<span class="badge text-bg-info">All brands</span>')  # noqa: S308 - a constant
        brands = getattr(self, "_brands", {}).get(record.pk, [])
        if not brands:
            return mark_safe('<span class="text-body-secondary">none</span>')  # noqa: S308 - a constant
        return format_html_join(", ", "{}", ((b.name,) for b in brands))

    def render_otp_enrolled(self, value):
        return status_badge(
            "enabled" if value else "pending", "enrolled" if value else "not enrolled"
        )

    def render_is_active(self, value):
        return status_badge("active" if value else "disabled", "active" if value else "deactivated")

    def render_last_login(self, value):
        return reltime(value)


class RoleTable(tables.Table):
    name = tables.Column(verbose_name="Role")
    description = tables.Column(verbose_name="What it is for", accessor="name", orderable=False)
    member_count = tables.Column(verbose_name="Members", attrs={"td": {"class": "id-col"}})
    permission_count = tables.Column(verbose_name="Permissions", attrs={"td": {"class": "id-col"}})

    class Meta:
        model = Group
        fields = ()
        order_by = ("name",)
        attrs = TABLE_ATTRS
        empty_text = "No role matches. Roles are seeded with `manage.py seed_roles`."

    def render_name(self, record, value):
        return _link("backoffice:role_detail", record.pk, value)

    def render_description(self, value):
        return seeded_roles.ROLE_DESCRIPTIONS.get(value, "Custom role")


class BrandTable(tables.Table):
    code = tables.Column(verbose_name="Code", attrs={"td": {"class": "id-col"}})
    name = tables.Column(verbose_name="Name")
    jurisdiction = tables.Column(verbose_name="Jurisdiction")
    default_currency = tables.Column(verbose_name="Currency")
    is_active = tables.Column(verbose_name="Status")

    class Meta:
        model = Brand
        fields = ()
        order_by = ("name",)
        attrs = TABLE_ATTRS
        empty_text = "No brand matches these filters, or none is in your scope."

    def render_name(self, record, value):
        return _link("backoffice:brand_detail", record.pk, value)

    def render_is_active(self, value):
        return status_badge("active" if value else "disabled", "active" if value else "inactive")
