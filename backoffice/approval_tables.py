"""The four-eyes queue table, with approve and reject buttons on the rows the user may decide."""

from __future__ import annotations

import django_tables2 as tables
from django.template.loader import render_to_string

from .approval_selectors import action_label, may_decide
from .models import ApprovalRequest
from .templatetags.ui import reltime, status_badge


class ApprovalRequestTable(tables.Table):
    id = tables.Column(
        verbose_name="#",
        linkify=("backoffice:approval_detail", {"pk": tables.A("pk")}),
        attrs={"td": {"class": "id-col"}},
    )
    requested_at = tables.Column(verbose_name="Requested")
    action = tables.Column(orderable=False)
    summary = tables.Column(
        orderable=False, linkify=("backoffice:approval_detail", {"pk": tables.A("pk")})
    )
    brand = tables.Column(
        verbose_name="Brand", accessor="brand__name", orderable=False, default="—"
    )
    requested_by = tables.Column(verbose_name="Requester", orderable=False)
    status = tables.Column(orderable=False)
    decided_by = tables.Column(verbose_name="Decided by", orderable=False, default="")
    decide = tables.Column(
        verbose_name="Decision",
        accessor="pk",
        orderable=False,
        attrs={"td": {"class": "text-nowrap"}},
    )

    class Meta:
        model = ApprovalRequest
        fields = (
            "id",
            "requested_at",
            "action",
            "summary",
            "brand",
            "requested_by",
            "status",
            "decided_by",
            "decide",
        )
        order_by = ("-requested_at",)
        attrs = {"class": "table table-sm table-hover align-middle", "data-keyboard-rows": ""}
        empty_text = (
            "No four-eyes request matches these filters in the brands you cover. Requests "
            "appear here when someone asks for a second approver; try “Any status”."
        )

    def render_requested_at(self, value):
        return reltime(value)

    def render_action(self, value):
        return action_label(value)

    def render_requested_by(self, value):
        return value.get_username()

    def render_decided_by(self, value):
        return value.get_username()

    def render_status(self, record):
        # `value` would be the display label (choices); the badge keys on the stored status.
        return status_badge(record.status, record.get_status_display())

    def render_decide(self, record):
        user = self.request.user
        return render_to_string(
            "backoffice/approvals/_row_actions.html",
            {
                "req": record,
                "can_decide": may_decide(user, record),
                "is_requester": record.requested_by_id == user.pk,
                "next": self.request.get_full_path(),
            },
            request=self.request,
        )
