"""Support pages: the ticket queues, a ticket, and the small views that act on tickets.

Views validate and translate: forms check input, services decide and write; a refused action
comes back beside its form on the ticket page, and the queue counters refresh out of band.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import FormView, TemplateView

from backoffice.exceptions import BackofficeError
from backoffice.links import object_url
from backoffice.tables_speed import speed_up_selects
from backoffice.views_base import ObjectListView, ScopedDetailView, StaffRequiredMixin
from players.panels import header_items_for
from players.selectors import players_for

from . import services
from .filtersets import MacroFilterSet, TicketFilterSet
from .forms import (
    BulkForm,
    DisputeForm,
    MacroApplyForm,
    MacroForm,
    TicketAssignForm,
    TicketCreateForm,
    TicketNoteForm,
    TicketPriorityForm,
    TicketStatusForm,
)
from .models import Macro, Ticket
from .selectors import QUEUES, count_label, queue_counts, tickets_for
from .tables import MacroTable, TicketTable


def _queue_context(user) -> dict:
    counts = queue_counts(user)
    return {
        "queues": [
            {
                "key": key,
                "label": q.label,
                "help": q.help,
                "count": counts.get(key),
                "count_label": count_label(counts.get(key)),
            }
            for key, q in QUEUES.items()
        ]
    }


class TicketListView(ObjectListView):
    """The queues: unassigned, mine, my team, overdue, disputes (and every ticket)."""

    model = Ticket
    filterset_class = TicketFilterSet
    table_class = TicketTable
    template_name = "support/ticket_list.html"
    title = "Tickets"
    export_permission = "support.view_ticket"
    export_fields = [
        ("id", "id"),
        ("brand", "brand__code"),
        ("player_id", "player_id"),
        ("subject", "subject"),
        ("category", "category"),
        ("priority", "priority"),
        ("status", "status"),
        ("team", "team"),
        ("assignee", "assignee__username"),
        ("created_at", "created_at"),
        ("sla_due_at", "sla_due_at"),
        ("resolution_code", "resolution_code"),
        ("is_dispute", "is_dispute"),
        ("dispute_outcome", "dispute_outcome"),
    ]

    def get_queryset(self):
        return super().get_queryset().select_related("player", "assignee")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user = self.request.user
        bulk_form = BulkForm(initial={"next": self.request.get_full_path()})
        speed_up_selects(bulk_form)
        ctx.update(
            current_queue=self.request.GET.get("queue", ""),
            may_work=user.has_perm("support.change_ticket"),
            bulk_form=bulk_form,
            **_queue_context(user),
        )
        return ctx


class QueueCountsView(StaffRequiredMixin, TemplateView):
    """The queue counters alone, swapped out of band (polled by the queue page)."""

    permission_required = "support.view_ticket"
    template_name = "support/partials/_queue_counts_oob.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(**_queue_context(self.request.user), **kwargs)


# --------------------------------------------------------------------------------------------
# Opening a ticket
# --------------------------------------------------------------------------------------------


class TicketCreateView(StaffRequiredMixin, FormView):
    """Open a ticket on a player, with the context object (?object_type=&object_id=) linked."""

    permission_required = ("support.add_ticket", "players.view_player")
    form_class = TicketCreateForm
    template_name = "support/ticket_form.html"

    def get_player(self):
        if not hasattr(self, "_player"):
            self._player = get_object_or_404(
                players_for(self.request.user).select_related("brand"), pk=self.kwargs["pk"]
            )
        return self._player

    def get_initial(self):
        get = self.request.GET
        initial = {
            k: get[k] for k in ("object_type", "object_id", "category", "subject") if k in get
        }
        return initial

    def get_context_data(self, **kwargs):
        player = self.get_player()
        form = kwargs.get("form") or self.get_form()
        object_type = form["object_type"].value() or ""
        object_id = form["object_id"].value() or ""
        return super().get_context_data(
            player=player,
            title=f"New ticket · {player.username}",
            submit_label="Open ticket",
            cancel_url=reverse("players:player_detail", kwargs={"pk": player.pk}),
            linked_object=(object_type, object_id, object_url(object_type, object_id))
            if object_type
            else None,
            **kwargs,
        )

    def form_valid(self, form):
        try:
            ticket = services.do_create_ticket(
                self.get_player(), acting_user=self.request.user, **form.cleaned_data
            )
        except BackofficeError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"Ticket #{ticket.pk} opened.")
        return redirect("support:ticket_detail", pk=ticket.pk)


# --------------------------------------------------------------------------------------------
# A ticket
# --------------------------------------------------------------------------------------------


class TicketDetailView(ScopedDetailView):
    """The ticket with its log, the player at a glance, and every action the user may take."""

    model = Ticket
    template_name = "support/ticket_detail.html"
    context_object_name = "ticket"
    bound_forms: dict | None = None

    def get_queryset(self):
        return super().get_queryset().select_related("player", "player__brand", "assignee")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ticket, user = self.object, self.request.user
        forms = {
            "note_form": TicketNoteForm(),
            "status_form": TicketStatusForm(ticket=ticket),
            "assign_form": TicketAssignForm(
                ticket=ticket, initial={"assignee": ticket.assignee_id, "team": ticket.team}
            ),
            "priority_form": TicketPriorityForm(initial={"priority": ticket.priority}),
            "macro_form": MacroApplyForm(ticket=ticket),
            "dispute_form": DisputeForm(
                initial={"is_dispute": ticket.is_dispute, "outcome": ticket.dispute_outcome}
            ),
        }
        forms.update(self.bound_forms or {})
        facts = []
        for item in header_items_for(user):
            if item.key == "open_tickets":
                continue
            value = item.value(ticket.player, user)
            if value not in (None, ""):
                facts.append((item, value))
        ctx.update(
            forms,
            player_facts=facts,
            title=f"Ticket #{ticket.pk} · {ticket.subject}",
            notes=list(ticket.notes.select_related("author", "macro")),
            linked_url=object_url(ticket.object_type, ticket.object_id),
            may_work=user.has_perm("support.change_ticket"),
            may_note=user.has_perm("support.add_ticketnote"),
            may_decide=user.has_perm("support.decide_dispute"),
            **_queue_context(user),
        )
        return ctx


class TicketActionView(StaffRequiredMixin, View):
    """POST-only: validate `form_class`, call the service, come back to the ticket.

    A refused action re-renders the ticket page with the bound form and its error (status
    422), so what was typed is kept beside the form it belongs to."""

    http_method_names = ["post"]
    permission_required = ("support.change_ticket",)
    form_class = None
    form_name = ""

    def get_ticket(self) -> Ticket:
        return get_object_or_404(
            tickets_for(self.request.user, "change").select_related("player"),
            pk=self.kwargs["pk"],
        )

    def make_form(self, ticket):
        return self.form_class(self.request.POST)

    def run(self, ticket, data) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        ticket = self.get_ticket()
        form = self.make_form(ticket)
        if form.is_valid():
            try:
                message = self.run(ticket, form.cleaned_data)
            except BackofficeError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, message)
                return redirect("support:ticket_detail", pk=ticket.pk)
        detail = TicketDetailView(request=request, kwargs={"pk": ticket.pk})
        detail.bound_forms = {self.form_name: form}
        detail.object = detail.get_object()
        response = TemplateResponse(
            request, detail.template_name, detail.get_context_data(object=detail.object)
        )
        response.status_code = 422
        return response


class TicketNoteView(TicketActionView):
    permission_required = ("support.change_ticket", "support.add_ticketnote")
    form_class = TicketNoteForm
    form_name = "note_form"

    def run(self, ticket, data):
        services.do_add_ticket_note(ticket, acting_user=self.request.user, **data)
        return "Reply recorded." if data["kind"] == "reply" else "Note added."


class TicketStatusView(TicketActionView):
    form_class = TicketStatusForm
    form_name = "status_form"

    def make_form(self, ticket):
        return TicketStatusForm(self.request.POST, ticket=ticket)

    def run(self, ticket, data):
        ticket = services.do_change_ticket_status(
            ticket, data["status"], acting_user=self.request.user,
            resolution_code=data["resolution_code"], note=data["note"],
        )  # fmt: skip
        return f"Ticket #{ticket.pk} is now {ticket.get_status_display().lower()}."


class TicketAssignView(TicketActionView):
    form_class = TicketAssignForm
    form_name = "assign_form"

    def make_form(self, ticket):
        return TicketAssignForm(self.request.POST, ticket=ticket)

    def run(self, ticket, data):
        ticket = services.do_assign_ticket(
            ticket, assignee=data["assignee"], team=data["team"],
            acting_user=self.request.user, reason=data["reason"],
        )  # fmt: skip
        who = ticket.assignee.get_username() if ticket.assignee else "nobody"
        return f"Ticket #{ticket.pk} assigned to {who} ({ticket.team})."


class TicketPriorityView(TicketActionView):
    form_class = TicketPriorityForm
    form_name = "priority_form"

    def run(self, ticket, data):
        ticket = services.do_change_ticket_priority(
            ticket, data["priority"], acting_user=self.request.user, reason=data["reason"]
        )
        return f"Priority is now {ticket.get_priority_display().lower()}; SLA moved."


class TicketMacroView(TicketActionView):
    permission_required = ("support.change_ticket", "support.add_ticketnote")
    form_class = MacroApplyForm
    form_name = "macro_form"

    def make_form(self, ticket):
        return MacroApplyForm(self.request.POST, ticket=ticket)

    def run(self, ticket, data):
        services.do_apply_macro(ticket, data["macro"], acting_user=self.request.user)
        return f"Macro “{data['macro'].name}” applied."


class TicketDisputeView(TicketActionView):
    form_class = DisputeForm
    form_name = "dispute_form"

    def run(self, ticket, data):
        services.do_set_dispute(
            ticket, is_dispute=data["is_dispute"], outcome=data["outcome"],
            note=data["note"], acting_user=self.request.user,
        )  # fmt: skip
        return "Dispute updated."


class TicketClaimView(TicketActionView):
    """Claim from the queue (htmx: the assignee cell comes back, counters out of band) or
    from the ticket page (a redirect)."""

    def post(self, request, *args, **kwargs):
        ticket = self.get_ticket()
        error = ""
        try:
            ticket = services.do_claim_ticket(ticket, acting_user=request.user)
        except BackofficeError as exc:
            error = str(exc)
            ticket.refresh_from_db()
        if request.htmx:
            return TemplateResponse(
                request,
                "support/partials/_claim_result.html",
                {"record": ticket, "error": error, **_queue_context(request.user)},
            )
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"Ticket #{ticket.pk} is yours.")
        return redirect("support:ticket_detail", pk=ticket.pk)


class TicketBulkView(StaffRequiredMixin, View):
    """One action on the ticked tickets of a queue page; all or nothing."""

    http_method_names = ["post"]
    permission_required = "support.change_ticket"

    def post(self, request, *args, **kwargs):
        form = BulkForm(request.POST)
        target = request.POST.get("next") or reverse("support:ticket_list")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("support:ticket_list")
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return HttpResponseRedirect(target)
        data = form.cleaned_data
        try:
            changed = services.do_bulk_update_tickets(
                data["selected"], action=data["action"], acting_user=request.user,
                assignee=data["assignee"], priority=data["priority"], status=data["status"],
                resolution_code=data["resolution_code"],
            )  # fmt: skip
        except BackofficeError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{changed} ticket{'s' if changed != 1 else ''} updated.")
        return HttpResponseRedirect(target)


# --------------------------------------------------------------------------------------------
# Macros
# --------------------------------------------------------------------------------------------


class MacroListView(ObjectListView):
    model = Macro
    filterset_class = MacroFilterSet
    table_class = MacroTable
    template_name = "support/macro_list.html"
    title = "Macros"
    count_rows = False


class MacroFormView(StaffRequiredMixin, FormView):
    form_class = MacroForm
    template_name = "layouts/form.html"

    def get_macro(self) -> Macro | None:
        return None

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.update(user=self.request.user, instance=self.get_macro())
        return kwargs

    def get_context_data(self, **kwargs):
        macro = self.get_macro()
        return super().get_context_data(
            title=f"Edit macro {macro.name}" if macro else "New macro",
            submit_label="Save macro", cancel_url=reverse("support:macro_list"), **kwargs,
        )  # fmt: skip

    def form_valid(self, form):
        try:
            macro = services.do_save_macro(
                self.get_macro(), data=form.cleaned_data, acting_user=self.request.user
            )
        except BackofficeError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"Macro {macro.name} saved.")
        return redirect("support:macro_list")


class MacroCreateView(MacroFormView):
    permission_required = "support.add_macro"


class MacroUpdateView(MacroFormView):
    permission_required = "support.change_macro"

    def get_macro(self) -> Macro:
        if not hasattr(self, "_macro"):
            self._macro = get_object_or_404(
                Macro.objects.in_brands(self.request.user), pk=self.kwargs["pk"]
            )
        return self._macro
