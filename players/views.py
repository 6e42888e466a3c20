"""Players pages: the list, the player page with its timeline, and the staff actions.

Views validate and translate: forms check input, services decide and write, and their errors
come back as a message beside the form (or a 403 when the role may not act at all).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.views.generic import FormView

from backoffice.views_base import (
    ObjectListView,
    ScopedDetailView,
    StaffRequiredMixin,
    pages_by_id,
)

from . import services
from .exceptions import PlayerError
from .filtersets import PlayerFilterSet, TagFilterSet
from .forms import (
    STATUS_VERBS,
    PlayerNoteForm,
    PlayerRestrictionsForm,
    PlayerStatusForm,
    PlayerTagForm,
    TagForm,
    TimelineFilterForm,
)
from .models import Player, Tag
from .panels import header_items_for, panels_for, player_actions
from .selectors import players_for, timeline_page
from .tables import PlayerTable, TagTable
from .timeline import KINDS

STATUS_PERMS = (
    "players.change_player_status",
    "players.block_player",
    "players.close_player",
    "players.self_exclude_player",
)


class PlayerListView(ObjectListView):
    """All players in the user's brands, searchable and filterable, newest first."""

    model = Player
    filterset_class = PlayerFilterSet
    table_class = PlayerTable
    title = "Players"
    export_permission = "players.view_player"
    export_fields = [
        ("id", "id"),
        ("brand", "brand__code"),
        ("external_ref", "external_ref"),
        ("username", "username"),
        ("first_name", "first_name"),
        ("last_name", "last_name"),
        ("country", "country"),
        ("currency", "currency"),
        ("status", "status"),
        ("kyc_level", "kyc_level"),
        ("registered_at", "registered_at"),
        ("last_activity_at", "last_activity_at"),
    ]

    def get_queryset(self):
        # Deep pages (page 50 of a filtered million) read their ids from the segment index.
        return pages_by_id(super().get_queryset().select_related("brand"))


# --------------------------------------------------------------------------------------------
# The player page
# --------------------------------------------------------------------------------------------


@dataclass
class ActionButton:
    label: str
    url: str | None
    icon: str
    allowed: bool
    escalate_to: list[str]
    danger: bool = False


def _action_buttons(player: Player, user) -> list[ActionButton]:
    """Status moves allowed from here, then the registered actions; each either usable or
    naming the roles to escalate to. One query for the escalation roles, whatever the count."""
    wanted: list[tuple[str, str, str, str, bool]] = []  # label, url, icon, perm, danger
    status_url = reverse("players:player_status", kwargs={"pk": player.pk})
    for target in Player.Status.values:
        if target in player.allowed_statuses():
            perm = services.status_permission(player.status, target)
            danger = target != Player.Status.ACTIVE
            wanted.append(
                (STATUS_VERBS[target], f"{status_url}?status={target}", "toggle2-off", perm, danger)
            )
    for action in player_actions():
        try:
            url = reverse(action.url_name, kwargs={"pk": player.pk})
        except NoReverseMatch:
            continue
        if action.query:
            url = f"{url}?{action.query.format(player=player)}"
        wanted.append((action.label, url, action.icon, action.permission, False))
    missing = {perm for *_, perm, _ in wanted if not user.has_perm(perm)}
    roles = services.roles_with_permissions(missing) if missing else {}
    return [
        ActionButton(
            label=label,
            url=url if user.has_perm(perm) else None,
            icon=icon,
            allowed=user.has_perm(perm),
            escalate_to=roles.get(perm, []),
            danger=danger,
        )
        for label, url, icon, perm, danger in wanted
    ]


def _escalations(actions: list[ActionButton]) -> list[tuple[str, str]]:
    """("Block, Close", "Compliance, Risk") pairs: the actions the user may not take, grouped
    by the roles to escalate them to, for the line under the action bar."""
    grouped: dict[str, list[str]] = {}
    for action in actions:
        if not action.allowed:
            who = ", ".join(action.escalate_to) or "an administrator"
            grouped.setdefault(who, []).append(action.label)
    return [(", ".join(labels), who) for who, labels in grouped.items()]


def _timeline_context(request, player: Player, form: TimelineFilterForm) -> dict:
    if form.is_valid():
        since, until = form.bounds()
        page = timeline_page(
            player,
            request.user,
            kinds=form.cleaned_data["kind"],
            since=since,
            until=until,
            cursor=form.cleaned_data["cursor"],
        )
    else:
        page = None
    params = request.GET.copy()
    params.pop("cursor", None)
    return {
        "player": player,
        "timeline_form": form,
        "timeline": page,
        "timeline_filters": params.urlencode(),
        "timeline_url": reverse("players:player_timeline", kwargs={"pk": player.pk}),
        "kinds": KINDS,
    }


class PlayerDetailView(ScopedDetailView):
    """One screen that answers a support question: header, panels, timeline, actions."""

    model = Player
    template_name = "players/player_detail.html"
    context_object_name = "player"

    def get_queryset(self):
        return super().get_queryset().select_related("brand")

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        player, user = self.object, self.request.user
        header = []
        for item in header_items_for(user):
            value = item.value(player, user)
            if value not in (None, ""):
                header.append((item, value))
        actions = _action_buttons(player, user)
        rendered = []
        for panel in panels_for(user):
            html = render_to_string(
                panel.template,
                {"player": player, "panel": panel, **panel.context(player, user)},
                request=self.request,
            )
            rendered.append((panel, html))
        ctx.update(
            title=f"{player.full_name} ({player.username})",
            tags=list(player.player_tags.select_related("tag")),
            header_items=header,
            main_panels=[(p, h) for p, h in rendered if p.column == "main" and p.key != "history"],
            side_panels=[(p, h) for p, h in rendered if p.column == "side"],
            history_panel=next(((p, h) for p, h in rendered if p.key == "history"), None),
            actions=actions,
            escalations=_escalations(actions),
            **_timeline_context(self.request, player, TimelineFilterForm(self.request.GET)),
        )
        return ctx


class PlayerTimelineView(ScopedDetailView):
    """The timeline alone: a full page without htmx; with htmx, the rows (and the next "load
    more" button) for the filter form or the load-more button to swap in."""

    model = Player
    template_name = "players/player_timeline.html"
    context_object_name = "player"

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = TimelineFilterForm(request.GET)
        if not form.is_valid() and "cursor" in form.errors:
            return HttpResponseBadRequest("That position in the timeline is not valid.")
        ctx = self.get_context_data(
            object=self.object,
            title=f"Timeline of {self.object.username}",
            **_timeline_context(request, self.object, form),
        )
        if request.htmx:
            part = "rows" if request.GET.get("cursor") else "timeline"
            return self.response_class(
                request=request,
                template=[f"players/partials/_timeline.html#{part}"],
                context=ctx,
            )
        return self.render_to_response(ctx)


# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


class PlayerActionMixin(StaffRequiredMixin):
    """A form page acting on one player in the user's scope; the service does the work."""

    template_name = "players/player_action_form.html"
    any_permission: tuple[str, ...] = ()
    submit_label = "Save"

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if (
            user.is_authenticated
            and self.any_permission
            and not any(user.has_perm(p) for p in self.any_permission)
        ):
            raise PermissionDenied("Your role does not allow this action on players.")
        return super().dispatch(request, *args, **kwargs)

    def get_permissions(self):
        return ["players.view_player", *super().get_permissions()]

    def get_player(self) -> Player:
        if not hasattr(self, "_player"):
            self._player = get_object_or_404(
                players_for(self.request.user).select_related("brand"), pk=self.kwargs["pk"]
            )
        return self._player

    def player_url(self) -> str:
        return reverse("players:player_detail", kwargs={"pk": self.get_player().pk})

    def get_context_data(self, **kwargs):
        player = self.get_player()
        return super().get_context_data(
            player=player,
            title=f"{self.action_title} · {player.username}",
            action_title=self.action_title,
            submit_label=self.submit_label,
            cancel_url=self.player_url(),
            **kwargs,
        )

    def run(self, form):
        raise NotImplementedError

    def form_valid(self, form):
        try:
            message = self.run(form)
        except PlayerError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, message)
        return redirect(self.player_url())


class PlayerStatusView(PlayerActionMixin, FormView):
    form_class = PlayerStatusForm
    any_permission = STATUS_PERMS
    action_title = "Change status"
    submit_label = "Change status"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.update(player=self.get_player(), user=self.request.user)
        return kwargs

    def get_initial(self):
        return {"status": self.request.GET.get("status", "")}

    def run(self, form):
        player = services.do_change_player_status(
            self.get_player(),
            form.cleaned_data["status"],
            acting_user=self.request.user,
            reason=form.cleaned_data["reason"],
        )
        return f"{player.username} is now {player.get_status_display().lower()}."


class PlayerRestrictionsView(PlayerActionMixin, FormView):
    form_class = PlayerRestrictionsForm
    permission_required = "players.change_player_restrictions"
    action_title = "Restrictions"
    submit_label = "Save restrictions"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["player"] = self.get_player()
        return kwargs

    def run(self, form):
        services.do_set_player_restrictions(
            self.get_player(),
            form.changes(),
            acting_user=self.request.user,
            reason=form.cleaned_data["reason"],
        )
        return "Restrictions saved."


class PlayerNoteCreateView(PlayerActionMixin, FormView):
    form_class = PlayerNoteForm
    permission_required = "players.add_playernote"
    template_name = "players/player_note_form.html"
    action_title = "Add a note"
    submit_label = "Add note"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def run(self, form):
        note = services.do_add_player_note(
            self.get_player(),
            reason=form.cleaned_data["reason"],
            body=form.cleaned_data["body"],
            acting_user=self.request.user,
        )
        return "Risk note added." if note.category == "risk" else "Note added."


class PlayerTagsView(PlayerActionMixin, FormView):
    """Add a tag (the form) or remove one (a POST with `remove=<tag id>`)."""

    form_class = PlayerTagForm
    permission_required = "players.add_playertag"
    template_name = "players/player_tags.html"
    action_title = "Tags"
    submit_label = "Add tag"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["player"] = self.get_player()
        return kwargs

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            tags=list(self.get_player().player_tags.select_related("tag", "added_by")),
            may_remove=self.request.user.has_perm("players.delete_playertag"),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        remove = request.POST.get("remove")
        if remove is None:
            return super().post(request, *args, **kwargs)
        tag = get_object_or_404(Tag, pk=remove if remove.isdigit() else 0)
        try:
            services.do_untag_player(self.get_player(), tag, acting_user=request.user)
        except PlayerError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Tag {tag.name} removed.")
        return redirect(reverse("players:player_tags", kwargs={"pk": self.get_player().pk}))

    def run(self, form):
        tag = form.cleaned_data["tag"]
        services.do_tag_player(self.get_player(), tag, acting_user=self.request.user)
        return f"Tagged {tag.name}."

    def form_valid(self, form):
        response = super().form_valid(form)
        if response.status_code == 302:
            return redirect(reverse("players:player_tags", kwargs={"pk": self.get_player().pk}))
        return response


# --------------------------------------------------------------------------------------------
# Tags vocabulary
# --------------------------------------------------------------------------------------------


class TagListView(ObjectListView):
    model = Tag
    table_class = TagTable
    title = "Player tags"
    template_name = "players/tag_list.html"
    count_rows = False

    filterset_class = TagFilterSet


class TagFormView(StaffRequiredMixin, FormView):
    form_class = TagForm
    template_name = "layouts/form.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title=self.title, submit_label="Save tag", cancel_url=reverse("players:tag_list"),
            **kwargs,
        )  # fmt: skip

    def form_valid(self, form):
        try:
            tag = self.save(form.cleaned_data)
        except PlayerError as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"Tag {tag.name} saved.")
        return redirect("players:tag_list")


class TagCreateView(TagFormView):
    permission_required = "players.add_tag"
    title = "New tag"

    def save(self, data):
        return services.do_create_tag(acting_user=self.request.user, **data)


class TagUpdateView(TagFormView):
    permission_required = "players.change_tag"

    @property
    def title(self):
        return f"Edit tag {self.get_tag().name}"

    def get_tag(self) -> Tag:
        if not hasattr(self, "_tag"):
            self._tag = get_object_or_404(Tag, pk=self.kwargs["pk"])
        return self._tag

    def get_initial(self):
        tag = self.get_tag()
        return {"name": tag.name, "description": tag.description, "colour": tag.colour}

    def save(self, data):
        return services.do_update_tag(self.get_tag(), acting_user=self.request.user, **data)
