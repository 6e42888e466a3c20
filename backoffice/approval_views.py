"""Four-eyes pages: the queue, one request, and the approve / reject / cancel POSTs.

The POST views are small and call `backoffice.services`; from the queue they answer htmx with
the row's decision cell, elsewhere they redirect with a message. A request outside the user's
brands answers 404; a role that may not decide answers 403; a refused decision (your own, no
longer pending) is a message, and nothing changes.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from .approval_filters import ApprovalRequestFilterSet
from .approval_selectors import action_label, may_decide
from .approval_tables import ApprovalRequestTable
from .approvals import get_action
from .audit_views import is_block, show_value
from .exceptions import ApprovalError, UnknownApprovalAction
from .models import ApprovalRequest, AuditEvent
from .services import do_cancel_approval, do_decide_approval
from .views_base import ObjectListView, ScopedDetailView, StaffRequiredMixin

VIEW_PERMISSION = "backoffice.view_approvalrequest"
DECIDE_PERMISSION = "backoffice.decide_approvalrequest"
NOTE_MAX = 2000


class DecisionForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}),
        help_text="Required to reject: the requester reads it.",
    )


class ApprovalRequestListView(ObjectListView):
    """The queue: pending requests unless the status filter says otherwise."""

    model = ApprovalRequest
    filterset_class = ApprovalRequestFilterSet
    table_class = ApprovalRequestTable
    title = "Approvals"

    def get_base_queryset(self):
        return ApprovalRequest.objects.select_related("brand", "requested_by", "decided_by")

    def get_filterset(self):
        data = self.request.GET.copy()
        data.setdefault("status", ApprovalRequest.Status.PENDING)
        return self.filterset_class(data, queryset=self.get_queryset(), request=self.request)


def payload_rows(payload) -> list[dict]:
    """A payload (or result) as label / value rows, nested values pretty-printed."""
    if payload is None:
        return []
    items = sorted(payload.items()) if isinstance(payload, dict) else [("value", payload)]
    return [
        {
            "key": str(key).replace("_", " ").capitalize(),
            "value": show_value(value),
            "block": is_block(value),
        }
        for key, value in items
    ]


def detail_context(request, req: ApprovalRequest, form: DecisionForm | None = None) -> dict:
    user = request.user
    try:
        spec = get_action(req.action)
    except UnknownApprovalAction:
        spec = None
    history = req.history.select_related("history_user").order_by("-history_date", "-history_id")
    events = None
    if user.has_perm("backoffice.view_auditevent"):
        events = list(
            AuditEvent.objects.restrict(user)
            .filter(object_type=req._meta.label_lower, object_id=str(req.pk))
            .order_by("-id")[:20]
        )
    form = form or DecisionForm()
    if req.requested_by_id == user.pk:
        form.fields["note"].help_text = "Optional: why you withdraw it."
    return {
        "title": f"Approval #{req.pk}",
        "object": req,
        "req": req,
        "action_label": action_label(req.action),
        "spec": spec,
        "payload": payload_rows(req.payload),
        "result": payload_rows(req.result) if req.result not in (None, {}) else [],
        "can_decide": may_decide(user, req),
        "is_requester": req.requested_by_id == user.pk,
        "form": form,
        "history": list(history[:50]),
        "events": events,
    }


class ApprovalRequestDetailView(ScopedDetailView):
    model = ApprovalRequest
    template_name = "backoffice/approvals/request_detail.html"

    def get_base_queryset(self):
        return ApprovalRequest.objects.select_related("brand", "requested_by", "decided_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(detail_context(self.request, self.object))
        return context


class _ApprovalPostView(StaffRequiredMixin, View):
    """POST only; the request is looked up inside the user's scope (404 outside)."""

    http_method_names = ["post"]
    permission_required: tuple[str, ...] = (VIEW_PERMISSION,)
    done_message = ""

    def post(self, request, pk: int):
        req = get_object_or_404(ApprovalRequest.objects.restrict(request.user, "view"), pk=pk)
        form = DecisionForm(self.form_data(request))
        if not form.is_valid() or not self.check_form(form):
            return self.refused(req, form=form)
        try:
            req = self.perform(req, form.cleaned_data["note"].strip())
        except ApprovalError as exc:
            return self.refused(req, message=str(exc))
        return self.done(req)

    def form_data(self, request) -> dict:
        note = request.POST.get("note", "")
        if not note.strip() and request.htmx and request.htmx.prompt:
            note = request.htmx.prompt  # the queue's reject button asks with hx-prompt
        return {"note": note}

    def check_form(self, form: DecisionForm) -> bool:
        return True

    def perform(self, req: ApprovalRequest, note: str) -> ApprovalRequest:
        """Call the service; each subclass says which."""
        raise NotImplementedError

    def _next(self, req: ApprovalRequest) -> str:
        target = self.request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(
            target, {self.request.get_host()}, require_https=self.request.is_secure()
        ):
            return target
        return req_url(req)

    def _row(self, req: ApprovalRequest, message: str, level: str):
        """The queue row's decision cell, for htmx to swap in place."""
        req.refresh_from_db()
        return render(
            self.request,
            "backoffice/approvals/_row_actions.html",
            {
                "req": req,
                "can_decide": may_decide(self.request.user, req),
                "is_requester": req.requested_by_id == self.request.user.pk,
                "next": self.request.POST.get("next", ""),
                "message": message,
                "message_level": level,
            },
        )

    def done(self, req: ApprovalRequest):
        message = self.done_message.format(req=req)
        if self.request.htmx:
            return self._row(req, message, "success")
        messages.success(self.request, message)
        return redirect(self._next(req))

    def refused(self, req: ApprovalRequest, *, message: str = "", form: DecisionForm | None = None):
        if form is not None and form.errors:
            message = " ".join(e for errors in form.errors.values() for e in errors)
        if self.request.htmx:
            return self._row(req, message, "danger")
        if form is not None:
            # Back to the request's page with what was typed and the error beside the field.
            req.refresh_from_db()
            return TemplateResponse(
                self.request,
                "backoffice/approvals/request_detail.html",
                detail_context(self.request, req, form=form),
                status=400,
            )
        messages.error(self.request, message)
        return redirect(req_url(req))


def req_url(req: ApprovalRequest) -> str:
    return reverse("backoffice:approval_detail", kwargs={"pk": req.pk})


class ApprovalApproveView(_ApprovalPostView):
    permission_required = (VIEW_PERMISSION, DECIDE_PERMISSION)
    done_message = "Approved #{req.pk}: {req.summary}. The action has run."

    def perform(self, req, note):
        return do_decide_approval(req.pk, acting_user=self.request.user, approve=True, note=note)


class ApprovalRejectView(_ApprovalPostView):
    permission_required = (VIEW_PERMISSION, DECIDE_PERMISSION)
    done_message = "Rejected #{req.pk}: {req.summary}."

    def check_form(self, form):
        if not form.cleaned_data["note"].strip():
            form.add_error("note", "Say why you reject it: the requester reads this note.")
            return False
        return True

    def perform(self, req, note):
        return do_decide_approval(req.pk, acting_user=self.request.user, approve=False, note=note)


class ApprovalCancelView(_ApprovalPostView):
    done_message = "Cancelled your request #{req.pk}."

    def perform(self, req, note):
        if req.requested_by_id != self.request.user.pk:
            raise PermissionDenied("Only the member of staff who asked can cancel a request.")
        return do_cancel_approval(req.pk, acting_user=self.request.user, note=note)
