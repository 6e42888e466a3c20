"""Reads about staff, roles and brand scopes, shared by the staff pages, services and search.

Brand access comes in three shapes: a guardian object permission on the brand given to the
user, the same given to one of the user's roles, or the global `backoffice.access_brand`
permission (through a role, directly, or as a superuser) which covers every brand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.models import GroupObjectPermission, UserObjectPermission

from .models import Brand, StaffSession, User
from .scoping import BRAND_PERMISSION

# The apps whose permissions the role editor shows, in menu order, and how to call them.
ROLE_EDITOR_APPS = {
    "players": "Players",
    "support": "Support",
    "payments": "Payments",
    "bonuses": "Bonuses",
    "compliance": "Compliance",
    "games": "Games",
    "reporting": "Reporting",
    "backoffice": "Back office",
    "auth": "Roles",
}
STANDARD_ACTIONS = ("view", "add", "change", "delete")


def access_brand_permission() -> Permission:
    app_label, codename = BRAND_PERMISSION.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _brand_ct() -> ContentType:
    return ContentType.objects.get_for_model(Brand)


def global_brand_q(prefix: str = "") -> Q:
    """Users (or with `prefix`, e.g. "user__", related rows) who cover every brand."""
    app_label, codename = BRAND_PERMISSION.split(".")
    perm = {"content_type__app_label": app_label, "codename": codename}
    return (
        Q(**{f"{prefix}is_superuser": True})
        | Q(**{f"{prefix}groups__permissions__{k}": v for k, v in perm.items()})
        | Q(**{f"{prefix}user_permissions__{k}": v for k, v in perm.items()})
    )


def staff_queryset() -> QuerySet[User]:
    """Staff with what the list and detail pages show: roles, OTP enrolment, all-brand cover."""
    confirmed = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    covers_all = User.objects.filter(pk=OuterRef("pk")).filter(global_brand_q())
    return User.objects.annotate(
        otp_enrolled=Exists(confirmed), all_brands=Exists(covers_all)
    ).prefetch_related("groups")


def users_with_brand(brand: Brand | int) -> Q:
    """A filter for users who may work with `brand`: directly, through a role, or globally."""
    brand_pk = str(getattr(brand, "pk", brand))
    direct = UserObjectPermission.objects.filter(
        user=OuterRef("pk"),
        permission__codename="access_brand",
        content_type=_brand_ct(),
        object_pk=brand_pk,
    )
    via_role = GroupObjectPermission.objects.filter(
        group__user=OuterRef("pk"),
        permission__codename="access_brand",
        content_type=_brand_ct(),
        object_pk=brand_pk,
    )
    covers_all = User.objects.filter(pk=OuterRef("pk")).filter(global_brand_q())
    return Q(Exists(direct)) | Q(Exists(via_role)) | Q(Exists(covers_all))


def direct_brand_ids(user: User) -> set[int]:
    """Brands granted to the user personally (what the staff form edits)."""
    return {
        int(pk)
        for pk in UserObjectPermission.objects.filter(
            user=user, permission__codename="access_brand", content_type=_brand_ct()
        ).values_list("object_pk", flat=True)
    }


def brands_by_user(users: Iterable[User]) -> dict[int, list[Brand]]:
    """Brands granted to each user personally or through a role, in two queries."""
    users = list(users)
    if not users:
        return {}
    ids = [u.pk for u in users]
    ct = _brand_ct()
    pairs: set[tuple[int, int]] = set()
    for user_id, object_pk in UserObjectPermission.objects.filter(
        user_id__in=ids, permission__codename="access_brand", content_type=ct
    ).values_list("user_id", "object_pk"):
        pairs.add((user_id, int(object_pk)))
    for user_id, object_pk in GroupObjectPermission.objects.filter(
        group__user__in=ids, permission__codename="access_brand", content_type=ct
    ).values_list("group__user", "object_pk"):
        pairs.add((user_id, int(object_pk)))
    brands = Brand.objects.in_bulk({b for _, b in pairs})
    result: dict[int, list[Brand]] = defaultdict(list)
    for user_id, brand_id in sorted(
        pairs, key=lambda p: brands[p[1]].name if p[1] in brands else ""
    ):
        if brand_id in brands:
            result[user_id].append(brands[brand_id])
    return result


def covers_all_brands(user: User) -> bool:
    return User.objects.filter(pk=user.pk).filter(global_brand_q()).exists()


def staff_sessions(user: User) -> list[dict]:
    """The user's tracked sessions, newest first, with whether each is still alive."""
    rows = list(StaffSession.objects.filter(user=user).order_by("-created_at")[:50])
    alive = dict(
        Session.objects.filter(
            session_key__in=[r.session_key for r in rows], expire_date__gt=timezone.now()
        ).values_list("session_key", "expire_date")
    )
    return [
        {
            "created_at": r.created_at,
            "ip_address": r.ip_address,
            "active": r.session_key in alive,
            "expires_at": alive.get(r.session_key),
            "key_hint": r.session_key[:6],
        }
        for r in rows
    ]


def roles_with_counts() -> QuerySet[Group]:
    return Group.objects.annotate(
        member_count=Count("user", distinct=True),
        permission_count=Count("permissions", distinct=True),
    ).order_by("name")


def editable_permissions() -> QuerySet[Permission]:
    """Every permission the role editor offers: our apps' models, not their history tables."""
    return (
        Permission.objects.select_related("content_type")
        .filter(content_type__app_label__in=ROLE_EDITOR_APPS)
        .exclude(content_type__model__startswith="historical")
        .exclude(content_type__app_label="auth", content_type__model="permission")
        .order_by("content_type__app_label", "content_type__model", "codename")
    )


def permission_matrix(granted: set[int]) -> list[dict]:
    """The permissions grouped by app and model for the role editor.

    Returns [{"app": label, "rows": [{"model": name, "cells": {action: perm|None},
    "custom": [perm, ...]}]}], each perm carrying `checked` (in `granted`).
    """
    apps: dict[str, dict[str, dict]] = {}
    for perm in editable_permissions():
        ct = perm.content_type
        model_class = ct.model_class()
        if model_class is None:
            continue
        perm.checked = perm.pk in granted
        rows = apps.setdefault(ct.app_label, {})
        row = rows.setdefault(
            ct.model,
            {
                "model": _model_label(model_class),
                "cells": dict.fromkeys(STANDARD_ACTIONS),
                "custom": [],
            },
        )
        action = perm.codename.split("_", 1)[0]
        if perm.codename == f"{action}_{ct.model}" and action in STANDARD_ACTIONS:
            row["cells"][action] = perm
        else:
            row["custom"].append(perm)
    return [
        {
            "app": ROLE_EDITOR_APPS[app],
            "rows": sorted(apps[app].values(), key=lambda r: r["model"]),
        }
        for app in ROLE_EDITOR_APPS
        if app in apps
    ]


def _model_label(model_class) -> str:
    if model_class is User:
        return "Staff"
    if model_class is Group:
        return "Role"
    return str(model_class._meta.verbose_name).capitalize()


def history_entries(obj, model, limit: int = 50) -> list[dict]:
    """The object's change history, newest first: who, when, why, and each field changed.

    Diffs are computed between consecutive rows in Python (one query for `limit` rows).
    """
    records = list(
        obj.history.select_related("history_user").order_by("-history_date", "-history_id")[
            : limit + 1
        ]
    )
    labels = {f.attname: str(f.verbose_name) for f in model._meta.concrete_fields}
    labels.update({f.name: str(f.verbose_name) for f in model._meta.concrete_fields})
    entries = []
    for i, record in enumerate(records[:limit]):
        older = records[i + 1] if i + 1 < len(records) else None
        changes = []
        if older is not None and record.history_type == "~":
            delta = record.diff_against(older)
            changes = [
                {"field": labels.get(c.field, c.field), "old": c.old, "new": c.new}
                for c in delta.changes
            ]
        entries.append(
            {
                "when": record.history_date,
                "who": record.history_user,
                "kind": {"+": "Created", "~": "Changed", "-": "Deleted"}[record.history_type],
                "reason": record.history_change_reason or "",
                "changes": changes,
                "ip": getattr(record, "history_ip", None),
            }
        )
    return entries
