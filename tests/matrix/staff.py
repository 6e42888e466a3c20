"""Permission-matrix cases for sign-in (/accounts/) and staff, role and brand pages (/bo/).

Notes for the runner:
- Admin and Auditor cover every brand through their role (global `backoffice.access_brand`), so
  a brand-B-only user of those roles still sees brand A's objects in the `scoped` cases.
- The sign-in pages serve every signed-in member of staff. `logout` is POST-only, ends the session
  that posts it and answers 200 with a "signed out" page (anonymous too, hence `public`).
"""

from __future__ import annotations

from types import SimpleNamespace

from tests.matrix import ALL_ROLES, Case

ADMIN = frozenset({"Admin"})
READERS = frozenset({"Admin", "Auditor"})


def build(world: SimpleNamespace) -> None:
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from tests.factories import StaffFactory

    target = StaffFactory(username="matrix-target", first_name="Mat", last_name="Rix")
    target.groups.add(Group.objects.get(name="Support"))
    assign_perm("backoffice.access_brand", target, world.brand_a)
    world.staff_target = target
    world.role, _ = Group.objects.get_or_create(name="Matrix role")


def _target(world):
    return {"pk": world.staff_target.pk}


def _reason(world):
    return {"reason": "Permission matrix"}


def _brand(world):
    return {"pk": world.brand_a.pk}


CASES = [
    # Sign-in pages.
    Case("login", allowed=ALL_ROLES, public=True),
    Case("logout", allowed=ALL_ROLES, get=False, post=True, public=True),
    Case("otp_enrol", allowed=ALL_ROLES, post=True, post_data={"code": "000000"}),
    Case("otp_verify", allowed=ALL_ROLES, post=True, post_data={"code": "000000"}),
    Case("otp_reset", allowed=ALL_ROLES, post=True, post_data={"code": "abc"}),
    Case(
        "password_change",
        allowed=ALL_ROLES,
        post=True,
        post_data={"old_password": "x", "new_password1": "a", "new_password2": "b"},
    ),
    # Staff.
    Case("backoffice:staff_list", allowed=READERS, query="?active=yes&q=matrix"),
    Case(
        "backoffice:staff_create",
        allowed=ADMIN,
        post=True,
        post_data=lambda w: {
            "username": "matrix-new",
            "first_name": "New",
            "last_name": "Person",
            "email": "matrix-new@example.test",
            "password_mode": "generate",
            "brands": [w.brand_a.pk],
        },
    ),
    Case("backoffice:staff_detail", allowed=READERS, kwargs=_target),
    Case(
        "backoffice:staff_edit",
        allowed=ADMIN,
        kwargs=_target,
        post=True,
        post_data=lambda w: {
            "first_name": "Mat",
            "last_name": "Rix",
            "email": "matrix-target@example.test",
            "roles": [],
            "brands": [w.brand_a.pk],
            "reason": "Permission matrix",
        },
    ),
    Case("backoffice:staff_deactivate", ADMIN, kwargs=_target, post=True, post_data=_reason),
    Case("backoffice:staff_reactivate", ADMIN, kwargs=_target, post=True, post_data=_reason),
    Case("backoffice:staff_reset_otp", ADMIN, kwargs=_target, post=True, post_data=_reason),
    Case(
        "backoffice:staff_password",
        ADMIN,
        kwargs=_target,
        post=True,
        post_data={"reason": "Permission matrix", "password_mode": "generate"},
    ),
    Case("backoffice:staff_end_sessions", ADMIN, kwargs=_target, post=True, post_data=_reason),
    Case("backoffice:staff_unlock", ADMIN, kwargs=_target, post=True, post_data=_reason),
    # Roles.
    Case("backoffice:role_list", allowed=READERS),
    Case(
        "backoffice:role_create",
        allowed=ADMIN,
        post=True,
        post_data={"name": "Matrix created role", "reason": "Permission matrix"},
    ),
    Case("backoffice:role_detail", allowed=READERS, kwargs=lambda w: {"pk": w.role.pk}),
    Case(
        "backoffice:role_edit",
        allowed=ADMIN,
        kwargs=lambda w: {"pk": w.role.pk},
        post=True,
        post_data={"reason": "Permission matrix"},
    ),
    # Brands (every role may read the brands it works with).
    Case("backoffice:brand_list", allowed=ALL_ROLES),
    Case("backoffice:brand_detail", allowed=ALL_ROLES, kwargs=_brand, scoped=True),
    Case(
        "backoffice:brand_create",
        allowed=ADMIN,
        post=True,
        post_data={
            "code": "matrix",
            "name": "Matrix",
            "jurisdiction": "MT",
            "default_currency": "EUR",
            "is_active": "on",
        },
    ),
    Case(
        "backoffice:brand_edit",
        allowed=ADMIN,
        kwargs=_brand,
        scoped=True,
        post=True,
        post_data=lambda w: {
            "name": w.brand_a.name,
            "jurisdiction": w.brand_a.jurisdiction,
            "default_currency": w.brand_a.default_currency,
            "is_active": "on",
            "reason": "Permission matrix",
        },
    ),
    Case(
        "backoffice:brand_grant",
        allowed=ADMIN,
        kwargs=_brand,
        scoped=True,
        get=False,
        post=True,
        post_data=lambda w: {"user": w.staff_target.pk, "reason": "Permission matrix"},
    ),
    Case(
        "backoffice:brand_revoke",
        allowed=ADMIN,
        kwargs=lambda w: {"pk": w.brand_a.pk, "user_pk": w.staff_target.pk},
        scoped=True,
        get=False,
        post=True,
        post_data=_reason,
    ),
]
