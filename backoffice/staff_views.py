"""Staff, role and brand administration pages (Admin writes; Auditor reads).

Lists are `ObjectListView`s; every write is a small view that validates a form and calls a
service in `staff_services`, turning `StaffRuleError` into an error on the form (what was typed
stays) and the services' `PermissionDenied` into a 403.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.generic import DetailView, FormView, View

from . import roles as seeded_roles
from .models import AuditEvent, Brand, User
from .scoping import brand_ids_for
from .staff_filtersets import BrandFilterSet, RoleFilterSet, StaffFilterSet
from .staff_forms import (
    BrandForm,
    BrandGrantForm,
    ReasonForm,
    RoleCreateForm,
    RolePermissionsForm,
    StaffCreateForm,
    StaffEditForm,
    StaffPasswordForm,
)
from .staff_selectors import (
    brands_by_user,
    direct_brand_ids,
    editable_permissions,
    history_entries,
    permission_matrix,
    roles_with_counts,
    staff_queryset,
    staff_sessions,
)
from .staff_services import (
    StaffRuleError,
    do_create_brand,
    do_create_role,
    do_create_staff,
    do_deactivate_staff,
    do_end_staff_sessions,
    do_grant_brands,
    do_reactivate_staff,
    do_reset_staff_otp,
    do_revoke_brands,
    do_set_staff_password,
    do_unlock_sign_in,
    do_update_brand,
    do_update_role_permissions,
    do_update_staff,
    may_administer,
)
from .staff_tables import BrandTable, RoleTable, StaffTable
from .views_base import ObjectListView, ScopedDetailView, StaffRequiredMixin


class ServiceFormMixin:
    """A form view whose `perform(form)` calls a service; its refusals land on the form.

    Who may open the page at all is checked before (403); a refusal here is about the values
    chosen, such as a role that would reach beyond the actor's brands.
    """

    template_name = "layouts/form.html"
    submit_label = "Save"

    def perform(self, form):
        raise NotImplementedError

    def form_valid(self, form):
        try:
            return self.perform(form)
        except (StaffRuleError, PermissionDenied) as exc:
            # The service refused and rolled back; say why beside what was typed.
            form.add_error(None, str(exc) or "You may not make this change.")
        except ValidationError as exc:
            form.add_error(None, exc)
        return self.form_invalid(form)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("submit_label", self.submit_label)
        kwargs.setdefault("cancel_url", self.get_cancel_url())
        return super().get_context_data(**kwargs)

    def get_cancel_url(self) -> str | None:
        return None


class ListWithActionsMixin:
    """A list page whose template extends `layouts/list.html` to add buttons.

    A partial is looked up in the named template only, not in the one it extends, so the
    htmx fragment is taken from the layout itself.
    """

    def render_to_response(self, context, template_name=None, **kwargs):
        if template_name and template_name.endswith("#table"):
            template_name = "layouts/list.html#table"
        return super().render_to_response(context, template_name=template_name, **kwargs)


# --- staff ---------------------------------------------------------------------------------


class StaffListView(ListWithActionsMixin, ObjectListView):
    model = User
    filterset_class = StaffFilterSet
    table_class = StaffTable
    template_name = "backoffice/staff/staff_list.html"
    title = "Staff"
    export_fields = [
        ("Id", "id"),
        ("Username", "username"),
        ("First name", "first_name"),
        ("Last name", "last_name"),
        ("Email", "email"),
        ("Active", "is_active"),
        ("Last sign-in", "last_login"),
    ]

    def get_queryset(self):
        return staff_queryset()


class StaffDetailView(StaffRequiredMixin, DetailView):
    permission_required = "backoffice.view_user"
    template_name = "backoffice/staff/staff_detail.html"
    context_object_name = "staff"

    def get_queryset(self):
        return staff_queryset()

    def get_context_data(self, **kwargs):
        staff: User = self.object
        viewer = self.request.user
        events = AuditEvent.objects.restrict(viewer).select_related("actor")
        brands = brands_by_user([staff]).get(staff.pk, [])
        direct = direct_brand_ids(staff)
        return super().get_context_data(
            title=str(staff),
            roles=sorted(staff.groups.all(), key=lambda g: g.name),
            brands=[(b, b.pk in direct) for b in brands],
            sessions=staff_sessions(staff),
            devices=list(staff.totpdevice_set.order_by("pk")),
            history=history_entries(staff, User),
            actions_by=list(events.filter(actor=staff)[:25]),
            changes_to=list(
                events.filter(object_type="backoffice.user", object_id=str(staff.pk))[:25]
            ),
            can_change=viewer.has_perm("backoffice.change_user"),
            in_reach=may_administer(viewer, staff),
            is_self=staff.pk == viewer.pk,
            lockout=_lockout(staff),
            audit_by_url=_audit_url(actor=staff.pk),
            audit_to_url=_audit_url(object_type="backoffice.user", object_id=staff.pk),
            **kwargs,
        )


def _audit_url(**filters) -> str:
    return f"{reverse('backoffice:audit_list')}?{urlencode(filters)}"


def _lockout(user: User) -> dict | None:
    """Whether django-axes currently locks `user` out, and from where."""
    from axes.models import AccessAttempt

    since = timezone.now() - settings.AXES_COOLOFF_TIME
    attempts = AccessAttempt.objects.filter(
        username=user.get_username(), attempt_time__gte=since
    ).order_by("-attempt_time")
    failures = sum(a.failures_since_start for a in attempts)
    if failures < settings.AXES_FAILURE_LIMIT:
        return None
    latest = attempts[0]
    return {
        "failures": failures,
        "ip_addresses": sorted({a.ip_address for a in attempts if a.ip_address}),
        "until": latest.attempt_time + settings.AXES_COOLOFF_TIME,
    }


class StaffCreateView(ServiceFormMixin, StaffRequiredMixin, FormView):
    permission_required = "backoffice.add_user"
    form_class = StaffCreateForm
    template_name = "backoffice/staff/staff_form.html"
    submit_label = "Create account"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "acting_user": self.request.user}

    def get_cancel_url(self):
        return reverse("backoffice:staff_list")

    def get_context_data(self, **kwargs):
        return super().get_context_data(title="New member of staff", **kwargs)

    def perform(self, form):
        data = form.cleaned_data
        user, generated = do_create_staff(
            acting_user=self.request.user,
            username=data["username"],
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            password=data["password"] if data["password_mode"] == "set" else None,
            roles=data["roles"],
            brands=data["brands"],
            reason=data.get("reason", ""),
        )
        if generated is None:
            messages.success(
                self.request,
                f"Created {user.username}. They enrol a second factor at first sign-in.",
            )
            return redirect("backoffice:staff_detail", pk=user.pk)
        # Shown once, in this answer only: never stored, never in a URL.
        response = render(
            self.request,
            "backoffice/staff/staff_password_shown.html",
            {
                "title": f"Created {user.username}",
                "staff": user,
                "password": generated,
                "created": True,
            },
        )
        response["Cache-Control"] = "no-store"
        return response


class StaffObjectMixin(StaffRequiredMixin):
    """A write on one member of staff: the target must be within the actor's reach."""

    permission_required = "backoffice.change_user"
    allow_self = False
    self_refusal = "You cannot do this to your own account: ask another admin."

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return super().dispatch(request, *args, **kwargs)
        self.target = get_object_or_404(User, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def check_target(self):
        if self.target.pk == self.request.user.pk and not self.allow_self:
            messages.error(self.request, self.self_refusal)
            return redirect("backoffice:staff_detail", pk=self.target.pk)
        if self.target.pk != self.request.user.pk and not may_administer(
            self.request.user, self.target
        ):
            raise PermissionDenied("This member of staff is outside your scope.")
        return None

    def get(self, request, *args, **kwargs):
        return self.check_target() or super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        return self.check_target() or super().post(request, *args, **kwargs)

    def get_cancel_url(self):
        return reverse("backoffice:staff_detail", kwargs={"pk": self.target.pk})

    def get_context_data(self, **kwargs):
        return super().get_context_data(staff=self.target, **kwargs)


class StaffEditView(ServiceFormMixin, StaffObjectMixin, FormView):
    form_class = StaffEditForm
    template_name = "backoffice/staff/staff_form.html"
    allow_self = True

    def get_form_kwargs(self):
        return {
            **super().get_form_kwargs(),
            "target": self.target,
            "acting_user": self.request.user,
        }

    def get_initial(self):
        return {
            "first_name": self.target.first_name,
            "last_name": self.target.last_name,
            "email": self.target.email,
            "roles": list(self.target.groups.all()),
            "brands": list(Brand.objects.filter(pk__in=direct_brand_ids(self.target))),
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(title=f"Edit {self.target.username}", **kwargs)

    def perform(self, form):
        data = form.cleaned_data
        do_update_staff(
            self.target,
            acting_user=self.request.user,
            reason=data["reason"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            email=data["email"],
            roles=data.get("roles") if "roles" in form.fields else None,
            brands=data.get("brands") if "brands" in form.fields else None,
        )
        messages.success(self.request, f"Saved {self.target.username}.")
        return redirect("backoffice:staff_detail", pk=self.target.pk)


class StaffActionView(ServiceFormMixin, StaffObjectMixin, FormView):
    """A one-step action on a member of staff that needs a reason (deactivate, reset…)."""

    form_class = ReasonForm
    template_name = "backoffice/staff/staff_action.html"
    title_template = ""
    explanation = ""
    danger = True
    service = None
    done_message = ""

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title=self.title_template.format(user=self.target.username),
            explanation=self.explanation,
            danger=self.danger,
            **kwargs,
        )

    def perform(self, form):
        result = type(self).service(
            self.target, acting_user=self.request.user, reason=form.cleaned_data["reason"]
        )
        messages.success(
            self.request, self.done_message.format(user=self.target.username, n=result)
        )
        return redirect("backoffice:staff_detail", pk=self.target.pk)


class StaffDeactivateView(StaffActionView):
    title_template = "Deactivate {user}"
    submit_label = "Deactivate and sign out everywhere"
    explanation = (
        "They can no longer sign in, and every session they have open ends now. Their roles, "
        "brands and history stay, so the account can be reactivated later."
    )
    service = do_deactivate_staff
    done_message = "Deactivated {user}; {n} open session(s) ended."
    self_refusal = "You cannot deactivate yourself: ask another admin."


class StaffReactivateView(StaffActionView):
    title_template = "Reactivate {user}"
    submit_label = "Reactivate"
    danger = False
    explanation = "They can sign in again, with the roles and brands they had."
    service = do_reactivate_staff
    done_message = "Reactivated {user}."


class StaffResetOTPView(StaffActionView):
    title_template = "Reset the second factor of {user}"
    submit_label = "Reset second factor"
    explanation = (
        "Their authenticator app stops working here and their sessions end. At their next "
        "sign-in (with their password) they set up an app again. Check who is asking first: "
        "this is how accounts are taken over."
    )
    service = do_reset_staff_otp
    done_message = "Reset the second factor of {user}."
    self_refusal = "To replace your own authenticator app use “Second factor” in your menu."


class StaffEndSessionsView(StaffActionView):
    title_template = "Sign {user} out everywhere"
    submit_label = "End all sessions"
    explanation = "Every session they have open ends now; they can sign in again."
    service = do_end_staff_sessions
    done_message = "Ended {n} session(s) of {user}."


class StaffUnlockView(StaffActionView):
    title_template = "Unlock sign-in for {user}"
    submit_label = "Unlock sign-in"
    danger = False
    explanation = (
        "Clears the failed sign-in attempts that locked this username out. If they did not "
        "make those attempts themselves, someone is guessing their password."
    )
    service = do_unlock_sign_in
    done_message = "Cleared {n} failed sign-in record(s) of {user}."


class StaffPasswordView(StaffActionView):
    form_class = StaffPasswordForm
    title_template = "Reset the password of {user}"
    submit_label = "Reset password"
    explanation = (
        "Their sessions end. A generated password is shown once, here, and they must choose "
        "their own at their next sign-in."
    )
    self_refusal = "To change your own password use “Second factor” → “Change password”."

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "target": self.target}

    def perform(self, form):
        data = form.cleaned_data
        generated = do_set_staff_password(
            self.target,
            acting_user=self.request.user,
            reason=data["reason"],
            password=data["password"] if data["password_mode"] == "set" else None,
        )
        if generated is None:
            messages.success(self.request, f"Set a new password for {self.target.username}.")
            return redirect("backoffice:staff_detail", pk=self.target.pk)
        response = render(
            self.request,
            "backoffice/staff/staff_password_shown.html",
            {
                "title": f"New password for {self.target.username}",
                "staff": self.target,
                "password": generated,
            },
        )
        response["Cache-Control"] = "no-store"
        return response


# --- roles ---------------------------------------------------------------------------------


class RoleListView(ListWithActionsMixin, ObjectListView):
    model = Group
    filterset_class = RoleFilterSet
    table_class = RoleTable
    template_name = "backoffice/staff/role_list.html"
    title = "Roles"
    count_rows = True

    def get_queryset(self):
        return roles_with_counts()


class RoleMixin(StaffRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        self.role = get_object_or_404(Group, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def role_context(self, granted: set[int]) -> dict:
        members = list(self.role.user_set.order_by("username"))
        events = AuditEvent.objects.restrict(self.request.user).select_related("actor")
        return {
            "role": self.role,
            "description": seeded_roles.ROLE_DESCRIPTIONS.get(self.role.name, "Custom role"),
            "matrix": permission_matrix(granted),
            "members": members,
            "events": list(
                events.filter(object_type="auth.group", object_id=str(self.role.pk))[:25]
            ),
            "can_change": self.request.user.has_perm("auth.change_group"),
            "holds_role": self.request.user.groups.filter(pk=self.role.pk).exists(),
        }


class RoleDetailView(RoleMixin, View):
    permission_required = "auth.view_group"

    def get(self, request, pk):
        granted = set(self.role.permissions.values_list("pk", flat=True))
        context = self.role_context(granted)
        return render(
            request,
            "backoffice/staff/role_detail.html",
            {"title": f"Role: {self.role.name}", "editable": False, **context},
        )


class RoleEditView(RoleMixin, View):
    permission_required = ("auth.view_group", "auth.change_group")

    def render_form(self, form, granted):
        context = self.role_context(granted)
        return render(
            self.request,
            "backoffice/staff/role_detail.html",
            {"title": f"Edit role: {self.role.name}", "editable": True, "form": form, **context},
        )

    def get(self, request, pk):
        granted = set(self.role.permissions.values_list("pk", flat=True))
        return self.render_form(RolePermissionsForm(), granted)

    def post(self, request, pk):
        form = RolePermissionsForm(request.POST)
        posted = {int(v) for v in request.POST.getlist("permissions") if v.isdigit()}
        if form.is_valid():
            try:
                # The editor shows our apps' permissions only; keep any others the role has.
                hidden = self.role.permissions.exclude(pk__in=editable_permissions())
                change = do_update_role_permissions(
                    self.role,
                    [*form.cleaned_data["permissions"], *hidden],
                    acting_user=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except StaffRuleError as exc:
                form.add_error(None, str(exc))
            else:
                if change["added"] or change["removed"]:
                    messages.success(
                        request,
                        f"Role {self.role.name}: {len(change['added'])} permission(s) added, "
                        f"{len(change['removed'])} removed.",
                    )
                else:
                    messages.info(request, "Nothing changed.")
                return redirect("backoffice:role_detail", pk=self.role.pk)
        return self.render_form(form, posted)


class RoleCreateView(ServiceFormMixin, StaffRequiredMixin, FormView):
    permission_required = ("auth.view_group", "auth.add_group")
    form_class = RoleCreateForm
    submit_label = "Create role"

    def get_cancel_url(self):
        return reverse("backoffice:role_list")

    def get_context_data(self, **kwargs):
        return super().get_context_data(title="New role", **kwargs)

    def perform(self, form):
        data = form.cleaned_data
        role = do_create_role(
            acting_user=self.request.user,
            name=data["name"],
            reason=data["reason"],
            copy_from=data.get("copy_from"),
        )
        messages.success(self.request, f"Created role {role.name}. Now choose its permissions.")
        return redirect("backoffice:role_edit", pk=role.pk)


# --- brands --------------------------------------------------------------------------------


class BrandListView(ListWithActionsMixin, ObjectListView):
    model = Brand
    filterset_class = BrandFilterSet
    table_class = BrandTable
    template_name = "backoffice/staff/brand_list.html"
    title = "Brands"


class BrandDetailView(ScopedDetailView):
    model = Brand
    template_name = "backoffice/staff/brand_detail.html"
    context_object_name = "brand"
    grant_form = None

    def get_context_data(self, **kwargs):
        brand: Brand = self.object
        viewer = self.request.user
        from guardian.models import GroupObjectPermission, UserObjectPermission

        from .staff_selectors import global_brand_q

        ct_filter = {"content_type__app_label": "backoffice", "content_type__model": "brand"}
        direct_ids = UserObjectPermission.objects.filter(
            permission__codename="access_brand", object_pk=str(brand.pk), **ct_filter
        ).values("user_id")
        staff = list(User.objects.filter(pk__in=direct_ids).order_by("username"))
        role_ids = GroupObjectPermission.objects.filter(
            permission__codename="access_brand", object_pk=str(brand.pk), **ct_filter
        ).values("group_id")
        all_brand_roles = Group.objects.filter(
            permissions__codename="access_brand", permissions__content_type__app_label="backoffice"
        ).order_by("name")
        may_grant = viewer.has_perm("backoffice.change_user") and (
            brand_ids_for(viewer) is None or brand.pk in brand_ids_for(viewer)
        )
        form = self.grant_form or (BrandGrantForm(brand=brand) if may_grant else None)
        return super().get_context_data(
            title=brand.name,
            staff=[(u, may_administer(viewer, u) and u.pk != viewer.pk) for u in staff],
            brand_roles=list(Group.objects.filter(pk__in=role_ids).order_by("name")),
            all_brand_roles=list(all_brand_roles),
            all_brand_users=User.objects.filter(is_active=True)
            .filter(pk__in=User.objects.filter(global_brand_q()).values("pk"))
            .count(),
            grant_form=form,
            may_grant=may_grant,
            can_edit=viewer.has_perm("backoffice.change_brand"),
            history=history_entries(brand, Brand),
            **kwargs,
        )


class BrandGrantView(BrandDetailView):
    """POST: give one member of staff access to this brand."""

    permission_required = ("backoffice.view_brand", "backoffice.change_user")
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = BrandGrantForm(request.POST, brand=self.object)
        if form.is_valid():
            target = form.cleaned_data["user"]
            try:
                if not may_administer(request.user, target):
                    raise PermissionDenied("That member of staff is outside your scope.")
                do_grant_brands(
                    target,
                    [self.object],
                    acting_user=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except StaffRuleError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{target.username} now works with {self.object.name}.")
                return redirect("backoffice:brand_detail", pk=self.object.pk)
        self.grant_form = form
        return self.render_to_response(self.get_context_data(object=self.object))


class BrandRevokeView(ScopedDetailView):
    """POST: take one member of staff's personal access to this brand away."""

    model = Brand
    permission_required = ("backoffice.view_brand", "backoffice.change_user")
    http_method_names = ["post"]

    def post(self, request, pk, user_pk):
        brand = self.get_object()
        target = get_object_or_404(User, pk=user_pk)
        form = ReasonForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give a reason to revoke access.")
        elif not may_administer(request.user, target):
            raise PermissionDenied("That member of staff is outside your scope.")
        else:
            try:
                do_revoke_brands(
                    target, [brand], acting_user=request.user, reason=form.cleaned_data["reason"]
                )
            except StaffRuleError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"{target.username} no longer works with {brand.name}.")
        return redirect("backoffice:brand_detail", pk=brand.pk)


class BrandCreateView(ServiceFormMixin, StaffRequiredMixin, FormView):
    permission_required = "backoffice.add_brand"
    form_class = BrandForm
    submit_label = "Create brand"

    def get_cancel_url(self):
        return reverse("backoffice:brand_list")

    def get_context_data(self, **kwargs):
        return super().get_context_data(title="New brand", **kwargs)

    def perform(self, form):
        data = {k: v for k, v in form.cleaned_data.items() if k != "reason"}
        brand = do_create_brand(
            acting_user=self.request.user, reason=form.cleaned_data["reason"], **data
        )
        messages.success(self.request, f"Created brand {brand.name}.")
        return redirect("backoffice:brand_detail", pk=brand.pk)


class BrandEditView(ServiceFormMixin, StaffRequiredMixin, FormView):
    permission_required = ("backoffice.view_brand", "backoffice.change_brand")
    form_class = BrandForm
    submit_label = "Save"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            # Scope first (outside it: 404), then the permission check below (without it: 403).
            self.brand = Brand.objects.in_brands(request.user).filter(pk=kwargs["pk"]).first()
            if self.brand is None:
                raise Http404("No such brand in your scope.")
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "instance": self.brand, "editing": True}

    def get_cancel_url(self):
        return reverse("backoffice:brand_detail", kwargs={"pk": self.brand.pk})

    def get_context_data(self, **kwargs):
        return super().get_context_data(title=f"Edit {self.brand.name}", **kwargs)

    def perform(self, form):
        data = {k: v for k, v in form.cleaned_data.items() if k not in ("reason", "code")}
        # The ModelForm already copied the input onto `self.brand`: the service re-reads the
        # row under lock, so pass the values, not the instance's state.
        do_update_brand(
            self.brand, acting_user=self.request.user, reason=form.cleaned_data["reason"], **data
        )
        messages.success(self.request, f"Saved {self.brand.name}.")
        return redirect("backoffice:brand_detail", pk=self.brand.pk)
