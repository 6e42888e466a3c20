"""Writes about staff, roles, brand scopes and the second factor. Every one is audited.

Rules every service here keeps, whatever page or command calls it:

- Four eyes: nobody changes their own roles, brands, status or second factor through the admin
  pages, nor the permissions of a role they hold (superusers excepted for roles).
- No escalation: an actor who covers only some brands may grant only brands they hold, may not
  reach staff who work outside those brands or who cover every brand, and may not hand out a
  role (or edit one) so that it covers every brand. Only a superuser touches a superuser.
- One history row per change: the user row is saved once per service call with the actor and a
  reason that says what changed, so the staff page's history reads like a log.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm, remove_perm

from . import roles as seeded_roles
from .audit import record_event, snapshot
from .exceptions import BackofficeError
from .models import Brand, StaffSession, User
from .scoping import BRAND_PERMISSION, brand_ids_for, check_in_scope, forget_brand_cache
from .staff_selectors import covers_all_brands, direct_brand_ids

STAFF_FIELDS = ["username", "first_name", "last_name", "email", "is_active", "must_enrol_otp"]
BRAND_FIELDS = ["code", "name", "jurisdiction", "default_currency", "is_active"]


class StaffRuleError(BackofficeError):
    """A staff write that the rules above refuse; the message says why, for the page."""


class SelfChangeRefused(StaffRuleError):
    pass


class AlreadyInState(StaffRuleError):
    pass


# --- helpers -------------------------------------------------------------------------------


def _permissions_by_name(names: set[str]) -> list[Permission]:
    wanted = {tuple(n.split(".", 1)) for n in names}
    perms = Permission.objects.select_related("content_type").filter(
        codename__in={c for _, c in wanted}
    )
    return [p for p in perms if (p.content_type.app_label, p.codename) in wanted]


def _perm_name(perm: Permission) -> str:
    return f"{perm.content_type.app_label}.{perm.codename}"


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise StaffRuleError("A reason is required.")
    return reason


def _lock(user: User) -> User:
    """The user row, locked for the rest of the transaction."""
    return User.objects.select_for_update().get(pk=user.pk)


def _save_user(user: User, *, acting_user, change: str, reason: str = "") -> None:
    """Save `user` once, leaving exactly one history row that says who and what."""
    user._history_user = acting_user
    user._change_reason = f"{change} — {reason}" if reason else change
    user.save()
    forget_brand_cache(user)


def _check_not_self(target: User, acting_user, what: str) -> None:
    if target.pk == acting_user.pk:
        raise SelfChangeRefused(f"You cannot {what} yourself: ask another admin.")


def check_staff_in_reach(acting_user, target: User) -> None:
    """Raise PermissionDenied unless `acting_user` may administer `target` at all."""
    if target.is_superuser and not acting_user.is_superuser:
        raise PermissionDenied("Only a superuser can change a superuser.")
    mine = brand_ids_for(acting_user)
    if mine is None:
        return
    if covers_all_brands(target):
        raise PermissionDenied("This member of staff covers every brand; you cover only some.")
    if not direct_brand_ids(target) <= mine:
        raise PermissionDenied("This member of staff works in brands outside your scope.")


def may_administer(acting_user, target: User) -> bool:
    try:
        check_staff_in_reach(acting_user, target)
    except PermissionDenied:
        return False
    return True


def _check_brands_grantable(acting_user, brand_ids: Iterable[int]) -> None:
    mine = brand_ids_for(acting_user)
    outside = set(brand_ids) - mine if mine is not None else set()
    if outside:
        names = ", ".join(Brand.objects.filter(pk__in=outside).values_list("name", flat=True))
        raise PermissionDenied(f"You can only grant brands you work with yourself ({names}).")


def _role_covers_all_brands(group: Group) -> bool:
    app_label, codename = BRAND_PERMISSION.split(".")
    return group.permissions.filter(content_type__app_label=app_label, codename=codename).exists()


def _check_roles_grantable(acting_user, groups: Iterable[Group]) -> None:
    if brand_ids_for(acting_user) is None:
        return
    wide = [g.name for g in groups if _role_covers_all_brands(g)]
    if wide:
        raise PermissionDenied(
            f"{', '.join(wide)} covers every brand; only staff who do too may grant it."
        )


def end_sessions(user: User) -> int:
    """Delete every tracked session of `user` from the session store; returns how many."""
    engine = import_module(settings.SESSION_ENGINE)
    keys = list(StaffSession.objects.filter(user=user).values_list("session_key", flat=True))
    for key in keys:
        engine.SessionStore(session_key=key).delete()
    StaffSession.objects.filter(user=user).delete()
    return len(keys)


def _apply_roles(
    user: User, groups: Iterable[Group], *, acting_user, reason: str
) -> tuple[list[str], list[str]]:
    """Set the user's roles, auditing each grant and revocation. Returns (added, removed)."""
    wanted = {g.pk: g for g in groups}
    current = {g.pk: g for g in user.groups.all()}
    added = [wanted[pk] for pk in wanted.keys() - current.keys()]
    removed = [current[pk] for pk in current.keys() - wanted.keys()]
    _check_roles_grantable(acting_user, added)
    if added:
        user.groups.add(*added)
    if removed:
        user.groups.remove(*removed)
    for group, action in [(g, "role.granted") for g in added] + [
        (g, "role.revoked") for g in removed
    ]:
        verb = "granted to" if action == "role.granted" else "revoked from"
        record_event(
            action,
            actor=acting_user,
            subject=user,
            summary=f"Role {group.name} {verb} {user.username}",
            reason=reason,
            before={"roles": sorted(g.name for g in current.values())},
            after={"roles": sorted(g.name for g in wanted.values())},
        )
    return sorted(g.name for g in added), sorted(g.name for g in removed)


def _apply_brands(
    user: User, add: set[int], remove: set[int], *, acting_user, reason: str
) -> tuple[list[str], list[str]]:
    """Grant and revoke personal brand access, auditing each. Returns (added, removed) names."""
    current = direct_brand_ids(user)
    add = add - current
    remove = remove & current
    _check_brands_grantable(acting_user, add | remove)
    brands = Brand.objects.in_bulk(add | remove)
    before = sorted(current)
    after = sorted((current | add) - remove)
    for pk in sorted(add):
        assign_perm(BRAND_PERMISSION, user, brands[pk])
    for pk in sorted(remove):
        remove_perm(BRAND_PERMISSION, user, brands[pk])
    for pk, action in [(pk, "brand.granted") for pk in sorted(add)] + [
        (pk, "brand.revoked") for pk in sorted(remove)
    ]:
        verb = "granted to" if action == "brand.granted" else "revoked from"
        record_event(
            action,
            actor=acting_user,
            subject=user,
            brand=brands[pk],
            summary=f"Brand {brands[pk].name} {verb} {user.username}",
            reason=reason,
            before={"brand_ids": before},
            after={"brand_ids": after},
        )
    return sorted(brands[pk].name for pk in add), sorted(brands[pk].name for pk in remove)


def _describe(label: str, added: list[str], removed: list[str]) -> list[str]:
    parts = []
    if added:
        parts.append(f"{label} added: {', '.join(added)}")
    if removed:
        parts.append(f"{label} removed: {', '.join(removed)}")
    return parts


def generate_password(length: int = 20) -> str:
    """A random password that passes the validators, for handing over once."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "-".join(
            "".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(length // 5)
        )
        if any(c.isdigit() for c in candidate) and any(c.isupper() for c in candidate):
            return candidate


# --- staff ---------------------------------------------------------------------------------


@transaction.atomic
def do_create_staff(
    *,
    acting_user,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    roles: Iterable[Group] = (),
    brands: Iterable[Brand] = (),
    reason: str = "",
) -> tuple[User, str | None]:
    """Create a member of staff who must enrol a second factor at first sign-in.

    Without `password`, a random one is generated and returned (to be shown once); the user
    must then choose their own at first sign-in. Returns (user, generated password or None).
    Never creates a superuser or a Django-admin `is_staff` user.
    """
    roles = list(roles)
    brand_ids = {b.pk for b in brands}
    _check_roles_grantable(acting_user, roles)
    _check_brands_grantable(acting_user, brand_ids)
    generated = None
    if not password:
        password = generated = generate_password()
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=False,
        is_superuser=False,
        must_enrol_otp=True,
        must_change_password=generated is not None,
    )
    validate_password(password, user)
    user.set_password(password)
    brand_names = sorted(Brand.objects.filter(pk__in=brand_ids).values_list("name", flat=True))
    change = "; ".join(
        ["Created"]
        + _describe("Roles", sorted(g.name for g in roles), [])
        + _describe("Brands", brand_names, [])
    )
    _save_user(user, acting_user=acting_user, change=change, reason=reason)
    role_names, _ = _apply_roles(user, roles, acting_user=acting_user, reason=reason)
    _apply_brands(user, brand_ids, set(), acting_user=acting_user, reason=reason)
    record_event(
        "staff.created",
        actor=acting_user,
        subject=user,
        summary=f"Created staff account {user.username}",
        reason=reason,
        after={
            **snapshot(user, STAFF_FIELDS),
            "roles": role_names,
            "brands": brand_names,
            "password": "generated" if generated else "set by admin",
        },
    )
    return user, generated


@transaction.atomic
def do_update_staff(
    user: User,
    *,
    acting_user,
    reason: str,
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
    roles: Iterable[Group] | None = None,
    brands: Iterable[Brand] | None = None,
) -> User:
    """Change names, email, roles and personal brands in one go: one history row, one event
    per role or brand granted or revoked, and a `staff.updated` event for the fields.

    Names and email of one's own account may change; roles and brands of it may not.
    """
    reason = _require_reason(reason)
    user = _lock(user)
    if user.pk != acting_user.pk or roles is not None or brands is not None:
        check_staff_in_reach(acting_user, user)
    before = snapshot(user, STAFF_FIELDS)
    for field, value in (("first_name", first_name), ("last_name", last_name), ("email", email)):
        if value is not None:
            setattr(user, field, value)
    after = snapshot(user, STAFF_FIELDS)
    changed = sorted(k for k in after if after[k] != before[k])
    labels = ", ".join(str(User._meta.get_field(k).verbose_name) for k in changed)
    parts = [f"Changed {labels}"] if changed else []
    if roles is not None:
        roles = list(roles)
        if {g.pk for g in roles} != set(user.groups.values_list("pk", flat=True)):
            _check_not_self(user, acting_user, "change the roles of")
        parts += _describe(
            "Roles", *_apply_roles(user, roles, acting_user=acting_user, reason=reason)
        )
    if brands is not None:
        wanted = {b.pk for b in brands}
        current = direct_brand_ids(user)
        if wanted != current:
            _check_not_self(user, acting_user, "change the brands of")
        parts += _describe(
            "Brands",
            *_apply_brands(
                user, wanted - current, current - wanted, acting_user=acting_user, reason=reason
            ),
        )
    if not parts:
        return user
    _save_user(user, acting_user=acting_user, change="; ".join(parts), reason=reason)
    if changed:
        record_event(
            "staff.updated",
            actor=acting_user,
            subject=user,
            summary=f"Changed {labels} of {user.username}",
            reason=reason,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return user


@transaction.atomic
def do_set_roles(user: User, roles: Iterable[Group], *, acting_user, reason: str) -> User:
    """Give `user` exactly these roles."""
    reason = _require_reason(reason)
    user = _lock(user)
    _check_not_self(user, acting_user, "change the roles of")
    check_staff_in_reach(acting_user, user)
    added, removed = _apply_roles(user, roles, acting_user=acting_user, reason=reason)
    if added or removed:
        change = "; ".join(_describe("Roles", added, removed))
        _save_user(user, acting_user=acting_user, change=change, reason=reason)
    return user


def _change_brands(user, add: set[int], remove: set[int], *, acting_user, reason: str) -> User:
    reason = _require_reason(reason)
    user = _lock(user)
    _check_not_self(user, acting_user, "change the brands of")
    check_staff_in_reach(acting_user, user)
    added, removed = _apply_brands(user, add, remove, acting_user=acting_user, reason=reason)
    if added or removed:
        change = "; ".join(_describe("Brands", added, removed))
        _save_user(user, acting_user=acting_user, change=change, reason=reason)
    return user


@transaction.atomic
def do_grant_brands(user: User, brands: Iterable[Brand], *, acting_user, reason: str) -> User:
    """Let `user` work with these brands too (guardian object permission per brand)."""
    return _change_brands(
        user, {b.pk for b in brands}, set(), acting_user=acting_user, reason=reason
    )


@transaction.atomic
def do_revoke_brands(user: User, brands: Iterable[Brand], *, acting_user, reason: str) -> User:
    """Take personal access to these brands away from `user`."""
    return _change_brands(
        user, set(), {b.pk for b in brands}, acting_user=acting_user, reason=reason
    )


@transaction.atomic
def do_set_brands(user: User, brands: Iterable[Brand], *, acting_user, reason: str) -> User:
    """Give `user` personal access to exactly these brands."""
    wanted = {b.pk for b in brands}
    current = direct_brand_ids(user)
    return _change_brands(
        user, wanted - current, current - wanted, acting_user=acting_user, reason=reason
    )


@transaction.atomic
def do_deactivate_staff(user: User, *, acting_user, reason: str) -> int:
    """Deactivate `user` and end every session they have, at once. Returns sessions ended."""
    reason = _require_reason(reason)
    user = _lock(user)
    _check_not_self(user, acting_user, "deactivate")
    check_staff_in_reach(acting_user, user)
    if not user.is_active:
        raise AlreadyInState(f"{user.username} is already deactivated.")
    user.is_active = False
    user.deactivated_reason = reason[:200]
    _save_user(user, acting_user=acting_user, change="Deactivated", reason=reason)
    ended = end_sessions(user)
    record_event(
        "staff.deactivated",
        actor=acting_user,
        subject=user,
        summary=f"Deactivated {user.username}; {ended} session(s) ended",
        reason=reason,
        before={"is_active": True},
        after={"is_active": False, "sessions_ended": ended},
    )
    return ended


@transaction.atomic
def do_reactivate_staff(user: User, *, acting_user, reason: str) -> User:
    """Let a deactivated member of staff sign in again (with the roles and brands they had)."""
    reason = _require_reason(reason)
    user = _lock(user)
    _check_not_self(user, acting_user, "reactivate")
    check_staff_in_reach(acting_user, user)
    if user.is_active:
        raise AlreadyInState(f"{user.username} is already active.")
    previous = user.deactivated_reason
    user.is_active = True
    user.deactivated_reason = ""
    _save_user(user, acting_user=acting_user, change="Reactivated", reason=reason)
    record_event(
        "staff.reactivated",
        actor=acting_user,
        subject=user,
        summary=f"Reactivated {user.username}",
        reason=reason,
        before={"is_active": False, "deactivated_reason": previous},
        after={"is_active": True},
    )
    return user


@transaction.atomic
def do_end_staff_sessions(user: User, *, acting_user, reason: str) -> int:
    """Sign `user` out everywhere now (a lost laptop, say). Returns sessions ended."""
    reason = _require_reason(reason)
    if user.pk != acting_user.pk:
        check_staff_in_reach(acting_user, user)
    ended = end_sessions(user)
    record_event(
        "staff.sessions_ended",
        actor=acting_user,
        subject=user,
        summary=f"Ended {ended} session(s) of {user.username}",
        reason=reason,
        after={"sessions_ended": ended},
    )
    return ended


@transaction.atomic
def do_reset_staff_otp(user: User, *, acting_user, reason: str) -> int:
    """Remove `user`'s second-factor devices and sessions: they enrol again at next sign-in.

    Sessions end too, so whoever holds a session cannot enrol a device of their own.
    """
    reason = _require_reason(reason)
    user = _lock(user)
    _check_not_self(user, acting_user, "reset the second factor of")
    check_staff_in_reach(acting_user, user)
    removed = _delete_devices(user)
    user.must_enrol_otp = True
    _save_user(user, acting_user=acting_user, change="Second factor reset", reason=reason)
    ended = end_sessions(user)
    record_event(
        "staff.otp_reset",
        actor=acting_user,
        subject=user,
        summary=f"Reset the second factor of {user.username}",
        reason=reason,
        after={"devices_removed": removed, "sessions_ended": ended},
    )
    return removed


@transaction.atomic
def do_set_staff_password(user: User, *, acting_user, reason: str, password: str | None = None):
    """Set a new password for `user` (or generate a one-time one, returned to show once).

    Their sessions end; with a generated password they must choose their own at sign-in.
    """
    reason = _require_reason(reason)
    user = _lock(user)
    _check_not_self(user, acting_user, "reset the password of")
    check_staff_in_reach(acting_user, user)
    generated = None
    if not password:
        password = generated = generate_password()
    validate_password(password, user)
    user.set_password(password)
    user.must_change_password = generated is not None
    _save_user(user, acting_user=acting_user, change="Password reset", reason=reason)
    ended = end_sessions(user)
    record_event(
        "staff.password_reset",
        actor=acting_user,
        subject=user,
        summary=f"Reset the password of {user.username}",
        reason=reason,
        after={"password": "generated" if generated else "set by admin", "sessions_ended": ended},
    )
    return generated


@transaction.atomic
def do_unlock_sign_in(user: User, *, acting_user, reason: str) -> int:
    """Clear the failed sign-in attempts that locked `user` out. Returns attempts cleared."""
    from axes.utils import reset

    reason = _require_reason(reason)
    check_staff_in_reach(acting_user, user)
    cleared = reset(username=user.get_username()) or 0
    record_event(
        "staff.sign_in_unlocked",
        actor=acting_user,
        subject=user,
        summary=f"Cleared {cleared} failed sign-in record(s) of {user.username}",
        reason=reason,
    )
    return cleared


# --- the member of staff's own account -----------------------------------------------------


def _delete_devices(user: User) -> int:
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        removed += model.objects.filter(user=user).delete()[0]
    return removed


@transaction.atomic
def do_start_otp_enrolment(user: User) -> TOTPDevice:
    """The user's unconfirmed TOTP device, created if there is none (same secret on reload)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def do_confirm_otp_device(device: TOTPDevice, *, acting_user) -> TOTPDevice:
    """Confirm an enrolment the user proved with a code: the device becomes their factor."""
    if device.user_id != acting_user.pk:
        raise PermissionDenied("Not your device.")
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=acting_user, confirmed=False).delete()
    user = _lock(acting_user)
    if user.must_enrol_otp:
        user.must_enrol_otp = False
        _save_user(user, acting_user=acting_user, change="Enrolled a second factor")
    acting_user.must_enrol_otp = False
    record_event(
        "auth.otp_enrolled",
        actor=acting_user,
        subject=acting_user,
        summary=f"{acting_user.username} enrolled an authenticator app",
    )
    return device


@transaction.atomic
def do_reset_own_otp(*, acting_user) -> int:
    """The user removes their own device (after verifying with it) to enrol a new one."""
    removed = _delete_devices(acting_user)
    user = _lock(acting_user)
    user.must_enrol_otp = True
    _save_user(user, acting_user=acting_user, change="Removed own second factor to enrol again")
    record_event(
        "auth.otp_reset",
        actor=acting_user,
        subject=acting_user,
        summary=f"{acting_user.username} removed their authenticator app to enrol a new one",
        after={"devices_removed": removed},
    )
    return removed


def note_otp_failure(user: User, *, stage: str) -> None:
    """Audit a wrong second-factor code (throttling already slows repeats down)."""
    record_event(
        "auth.otp_failed",
        actor=user,
        subject=user,
        summary=f"Wrong second-factor code at {stage}",
    )


@transaction.atomic
def do_change_own_password(*, acting_user, password: str) -> None:
    """The user chooses a new password (validated); clears `must_change_password`."""
    user = _lock(acting_user)
    validate_password(password, user)
    user.set_password(password)
    user.must_change_password = False
    _save_user(user, acting_user=acting_user, change="Changed own password")
    acting_user.password = user.password
    acting_user.must_change_password = False
    record_event(
        "auth.password_changed",
        actor=acting_user,
        subject=acting_user,
        summary=f"{acting_user.username} changed their password",
    )


# --- roles ---------------------------------------------------------------------------------


@transaction.atomic
def ensure_roles(*, reset: bool = False, acting_user=None) -> list[Group]:
    """Create the seeded roles that are missing, with their default permissions.

    Existing roles keep what admins made of them unless `reset` is true.
    """
    groups = []
    for name in seeded_roles.ROLES:
        group, created = Group.objects.get_or_create(name=name)
        if created or reset:
            perms = _permissions_by_name(seeded_roles.ROLE_PERMISSIONS[name])
            group.permissions.set(perms)
            record_event(
                "role.seeded",
                actor=acting_user,
                actor_label=None if acting_user else "system",
                summary=f"Role {name} {'reset' if not created else 'created'} with defaults",
                after={"permissions": sorted(seeded_roles.ROLE_PERMISSIONS[name])},
            )
        groups.append(group)
    return groups


def _check_role_editable(group: Group, acting_user) -> None:
    if not acting_user.is_superuser and acting_user.groups.filter(pk=group.pk).exists():
        raise SelfChangeRefused(
            f"You hold the role {group.name}: another admin must change its permissions."
        )


@transaction.atomic
def do_create_role(*, acting_user, name: str, reason: str, copy_from: Group | None = None) -> Group:
    """Create a role, empty or with the permissions of `copy_from`."""
    reason = _require_reason(reason)
    perms = list(copy_from.permissions.select_related("content_type")) if copy_from else []
    names = sorted(_perm_name(p) for p in perms)
    if BRAND_PERMISSION in names and brand_ids_for(acting_user) is not None:
        raise PermissionDenied("Only staff who cover every brand may create a role that does.")
    group = Group.objects.create(name=name)
    group.permissions.set(perms)
    record_event(
        "role.created",
        actor=acting_user,
        subject=group,
        summary=f"Created role {name}" + (f" from {copy_from.name}" if copy_from else ""),
        reason=reason,
        after={"permissions": names},
    )
    return group


@transaction.atomic
def do_update_role_permissions(
    group: Group, permissions: Iterable[Permission], *, acting_user, reason: str
) -> dict[str, list[str]]:
    """Give the role exactly these permissions. Returns {"added": [...], "removed": [...]}."""
    reason = _require_reason(reason)
    group = Group.objects.select_for_update().get(pk=group.pk)
    _check_role_editable(group, acting_user)
    current = {_perm_name(p): p for p in group.permissions.select_related("content_type")}
    wanted = {_perm_name(p): p for p in permissions}
    added = sorted(wanted.keys() - current.keys())
    removed = sorted(current.keys() - wanted.keys())
    if BRAND_PERMISSION in added and brand_ids_for(acting_user) is not None:
        raise PermissionDenied("Only staff who cover every brand may make a role cover them all.")
    if not added and not removed:
        return {"added": [], "removed": []}
    group.permissions.set(wanted.values())
    record_event(
        "role.permissions_changed",
        actor=acting_user,
        subject=group,
        summary=f"Role {group.name}: {len(added)} permission(s) added, {len(removed)} removed",
        reason=reason,
        before={"permissions": sorted(current)},
        after={"permissions": sorted(wanted), "added": added, "removed": removed},
    )
    return {"added": added, "removed": removed}


# --- brands --------------------------------------------------------------------------------


@transaction.atomic
def do_create_brand(*, acting_user, reason: str = "", **fields: Any) -> Brand:
    """Create a brand. Only staff who cover every brand may (anyone else could not see it)."""
    if brand_ids_for(acting_user) is not None:
        raise PermissionDenied("Only staff who cover every brand can create one.")
    brand = Brand(**{k: v for k, v in fields.items() if k in BRAND_FIELDS})
    brand._history_user = acting_user
    brand._change_reason = reason or "Created"
    brand.full_clean()
    brand.save()
    record_event(
        "brand.created",
        actor=acting_user,
        subject=brand,
        summary=f"Created brand {brand.name}",
        reason=reason,
        after=snapshot(brand, BRAND_FIELDS),
    )
    return brand


@transaction.atomic
def do_update_brand(brand: Brand, *, acting_user, reason: str, **fields: Any) -> Brand:
    """Change a brand's details (its code stays: other systems key on it)."""
    reason = _require_reason(reason)
    brand = Brand.objects.select_for_update().get(pk=brand.pk)
    check_in_scope(acting_user, brand, "change")
    before = snapshot(brand, BRAND_FIELDS)
    for key, value in fields.items():
        if key in BRAND_FIELDS and key != "code":
            setattr(brand, key, value)
    after = snapshot(brand, BRAND_FIELDS)
    changed = sorted(k for k in after if after[k] != before[k])
    if not changed:
        return brand
    brand.full_clean()
    brand._history_user = acting_user
    brand._change_reason = reason
    brand.save()
    record_event(
        "brand.updated",
        actor=acting_user,
        subject=brand,
        summary=f"Changed {', '.join(changed)} of brand {brand.name}",
        reason=reason,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    return brand
