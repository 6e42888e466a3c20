"""Staff, role and brand administration: pages, services, audit, history and scope rules."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm

from backoffice import roles
from backoffice.models import AuditEvent, Brand, StaffSession, User
from backoffice.scoping import brand_ids_for
from backoffice.search import search_all
from backoffice.staff_selectors import direct_brand_ids
from backoffice.staff_services import (
    SelfChangeRefused,
    do_create_staff,
    do_deactivate_staff,
    do_grant_brands,
    do_set_roles,
    do_update_role_permissions,
    ensure_roles,
)
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"backoffice:{name}", args=args)


@pytest.fixture
def admin(make_staff):
    return make_staff("Admin", username="alice-admin")


@pytest.fixture
def admin_client(admin):
    return verified_client(admin)


@pytest.fixture
def target(make_staff):
    return make_staff("Support", username="sam-support", first_name="Sam", last_name="Support")


@pytest.fixture
def scoped_admin(db, role_groups, brand_a):
    """An admin whose role does not cover every brand, working with brand A only."""
    names = roles.ROLE_PERMISSIONS[roles.ADMIN] - {"backoffice.access_brand"}
    role = Group.objects.create(name="Brand admin")
    for name in names:
        app_label, codename = name.split(".")
        role.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    from tests.factories import StaffFactory

    user = StaffFactory(username="brenda-brand-admin")
    user.groups.add(role)
    assign_perm("backoffice.access_brand", user, brand_a)
    return user


# --- lists and detail ----------------------------------------------------------------------


def test_staff_list_for_admin_and_auditor_not_for_support(make_staff, client_for, target):
    for role, expected in [("Admin", 200), ("Auditor", 200), ("Support", 403)]:
        response = client_for(make_staff(role)).get(url("staff_list"))
        assert response.status_code == expected, role
    body = client_for(make_staff("Auditor")).get(url("staff_list")).content.decode()
    assert "sam-support" in body
    assert "New member of staff" not in body  # the Auditor reads only


def test_staff_list_filters_by_role_brand_and_status(
    admin_client, make_staff, brand_a, brand_b, target
):
    make_staff("Payments", username="paula-payments", brands=[brand_b])
    make_staff("Support", username="old-timer", is_active=False)

    def names(query):
        body = admin_client.get(url("staff_list") + query).content.decode()
        return {n for n in ("sam-support", "paula-payments", "old-timer") if n in body}

    payments = Group.objects.get(name="Payments")
    assert names(f"?role={payments.pk}") == {"paula-payments"}
    assert names(f"?brand={brand_b.pk}") == {"paula-payments"}
    assert names("?active=no") == {"old-timer"}
    assert names("?q=sam") == {"sam-support"}
    assert names(f"?q={target.pk}") == {"sam-support"}


def test_staff_list_htmx_gets_only_the_table(admin_client, target):
    response = admin_client.get(
        url("staff_list") + "?q=sam", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="list-table"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "sam-support" in body and "<html" not in body


def test_staff_list_query_count_does_not_grow_with_rows(
    admin_client, make_staff, django_assert_max_num_queries
):
    for i in range(30):
        make_staff("Support", username=f"bulk{i}")
    with django_assert_max_num_queries(25):
        response = admin_client.get(url("staff_list"))
    assert response.status_code == 200


def test_staff_detail_shows_roles_brands_sessions_history_and_actions(
    admin, admin_client, target, brand_a
):
    verified_client(target)  # a session of theirs
    do_set_roles(target, [Group.objects.get(name="Payments")], acting_user=admin, reason="Moved")
    body = admin_client.get(url("staff_detail", target.pk)).content.decode()
    assert "Payments" in body and brand_a.name in body
    assert "Roles added: Payments" in body and "alice-admin" in body  # history with who
    assert "role.granted" in body  # audit events about them
    assert "Sessions" in body and "Deactivate" in body


def test_staff_detail_lists_what_they_did(admin, make_staff, client_for, target):
    do_set_roles(target, [Group.objects.get(name="Risk")], acting_user=admin, reason="Rota")
    auditor = client_for(make_staff("Auditor"))
    body = auditor.get(url("staff_detail", admin.pk)).content.decode()
    assert "What they did" in body and "Role Risk granted to sam-support" in body
    assert "Edit</a>" not in body


# --- create --------------------------------------------------------------------------------


def _create_payload(**extra):
    data = {
        "username": "nina-new",
        "first_name": "Nina",
        "last_name": "New",
        "email": "nina@example.test",
        "roles": [Group.objects.get(name="Support").pk],
        "password_mode": "generate",
        "password": "",
        "reason": "",
    }
    data.update(extra)
    return data


def test_create_staff_with_a_one_time_password_shown_once(admin, admin_client, brand_a):
    response = admin_client.post(url("staff_create"), _create_payload(brands=[brand_a.pk]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    user = User.objects.get(username="nina-new")
    password = body.split('id="one-time-password">')[1].split("<")[0]
    assert user.check_password(password)
    assert user.must_enrol_otp and user.must_change_password
    assert not user.is_superuser and not user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == ["Support"]
    assert direct_brand_ids(user) == {brand_a.pk}
    history = list(user.history.all())
    assert len(history) == 1
    assert history[0].history_type == "+" and history[0].history_user == admin
    assert "Roles added: Support" in history[0].history_change_reason
    actions = set(
        AuditEvent.objects.filter(
            object_type="backoffice.user", object_id=str(user.pk)
        ).values_list("action", flat=True)
    )
    assert actions == {"staff.created", "role.granted", "brand.granted"}
    # Shown once: nothing stores it where the detail page could show it again.
    assert password not in admin_client.get(url("staff_detail", user.pk)).content.decode()


def test_create_staff_with_a_password_set_by_the_admin(admin_client):
    response = admin_client.post(
        url("staff_create"),
        _create_payload(password_mode="set", password="a-long-enough-secret-9"),
    )
    assert response.status_code == 302
    user = User.objects.get(username="nina-new")
    assert user.check_password("a-long-enough-secret-9")
    assert not user.must_change_password and user.must_enrol_otp


def test_create_form_keeps_input_and_puts_errors_beside_fields(admin_client, target):
    response = admin_client.post(
        url("staff_create"),
        _create_payload(password_mode="set", password="short", email=target.email),
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="nina-new"' in body and 'value="Nina"' in body
    assert "at least 12 characters" in body
    assert "already has this email" in body
    assert "is-invalid" in body
    assert not User.objects.filter(username="nina-new").exists()


def test_mass_assignment_is_ignored_on_create_and_edit(admin_client, target):
    admin_client.post(
        url("staff_create"),
        _create_payload(is_superuser="on", is_staff="on", user_permissions=[1, 2, 3]),
    )
    created = User.objects.get(username="nina-new")
    assert not created.is_superuser and not created.is_staff
    assert not created.user_permissions.exists()

    response = admin_client.post(
        url("staff_edit", target.pk),
        {
            "first_name": "Sam",
            "last_name": "Support",
            "email": target.email,
            "roles": [Group.objects.get(name="Support").pk],
            "brands": [b.pk for b in Brand.objects.filter(pk__in=direct_brand_ids(target))],
            "reason": "Trying my luck",
            "is_superuser": "on",
            "is_staff": "on",
            "is_active": "",
            "username": "renamed",
        },
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert not target.is_superuser and not target.is_staff and target.is_active
    assert target.username == "sam-support"


# --- edit, roles, brands -------------------------------------------------------------------


def test_edit_through_the_page_leaves_one_history_row_with_the_actor(
    admin, admin_client, target, brand_a, brand_b
):
    before = target.history.count()
    response = admin_client.post(
        url("staff_edit", target.pk),
        {
            "first_name": "Samantha",
            "last_name": "Support",
            "email": "samantha@example.test",
            "roles": [Group.objects.get(name="Payments").pk],
            "brands": [brand_a.pk, brand_b.pk],
            "reason": "Promoted to payments",
        },
    )
    assert response.status_code == 302
    rows = list(target.history.all()[: target.history.count() - before])
    assert len(rows) == 1
    row = rows[0]
    assert row.history_user == admin and row.first_name == "Samantha"
    assert "Promoted to payments" in row.history_change_reason
    assert "Roles added: Payments" in row.history_change_reason
    assert "Brands added: Beta Bets" in row.history_change_reason
    actions = sorted(
        AuditEvent.objects.filter(
            object_id=str(target.pk), object_type="backoffice.user"
        ).values_list("action", flat=True)
    )
    assert actions == ["brand.granted", "role.granted", "role.revoked", "staff.updated"]
    updated = AuditEvent.objects.get(action="staff.updated")
    assert updated.before == {"email": "sam-support@example.test", "first_name": "Sam"}
    assert updated.actor == admin and updated.reason == "Promoted to payments"


def test_edit_needs_a_reason_and_keeps_input(admin_client, target):
    response = admin_client.post(
        url("staff_edit", target.pk),
        {"first_name": "Changed", "last_name": "Support", "email": target.email, "reason": ""},
    )
    assert response.status_code == 200
    assert 'value="Changed"' in response.content.decode()
    target.refresh_from_db()
    assert target.first_name == "Sam"


@pytest.mark.parametrize(
    "name,data",
    [
        ("staff_deactivate", {"reason": "Left"}),
        ("staff_reset_otp", {"reason": "New phone, checked by video call"}),
        ("staff_password", {"reason": "Forgot it", "password_mode": "generate"}),
        ("staff_end_sessions", {"reason": "Lost laptop"}),
    ],
)
def test_each_staff_action_through_the_page_leaves_at_most_one_history_row(
    admin, admin_client, target, name, data
):
    before = target.history.count()
    response = admin_client.post(url(name, target.pk), data)
    assert response.status_code in (200, 302)
    new_rows = list(target.history.all()[: target.history.count() - before])
    expected = 0 if name == "staff_end_sessions" else 1  # ending sessions changes no field
    assert len(new_rows) == expected
    assert all(
        r.history_user == admin and data["reason"] in r.history_change_reason for r in new_rows
    )
    assert AuditEvent.objects.filter(actor=admin, reason=data["reason"]).count() == 1


def test_deactivate_needs_a_reason_then_reactivate(admin, admin_client, target):
    response = admin_client.post(url("staff_deactivate", target.pk), {"reason": "  "})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    target.refresh_from_db()
    assert target.is_active

    admin_client.post(url("staff_deactivate", target.pk), {"reason": "Left"})
    target.refresh_from_db()
    assert not target.is_active and target.deactivated_reason == "Left"
    again = admin_client.post(url("staff_deactivate", target.pk), {"reason": "Left"})
    assert "already deactivated" in again.content.decode()

    admin_client.post(url("staff_reactivate", target.pk), {"reason": "Came back"})
    target.refresh_from_db()
    assert target.is_active and target.deactivated_reason == ""
    assert AuditEvent.objects.filter(action="staff.reactivated", actor=admin).count() == 1


def test_reset_second_factor_removes_devices_and_ends_sessions(admin, admin_client, target):
    target_client = verified_client(target)
    response = admin_client.post(url("staff_reset_otp", target.pk), {"reason": "New phone"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=target).exists()
    target.refresh_from_db()
    assert target.must_enrol_otp
    assert not StaffSession.objects.filter(user=target).exists()
    assert target_client.get("/").status_code == 302


def test_admin_cannot_change_their_own_roles_brands_or_status(admin, admin_client, brand_b):
    admin_client.post(
        url("staff_edit", admin.pk),
        {
            "first_name": "Alice",
            "last_name": "Admin",
            "email": admin.email,
            "roles": [g.pk for g in Group.objects.all()],
            "brands": [brand_b.pk],
            "reason": "Self-service",
        },
    )
    assert set(admin.groups.values_list("name", flat=True)) == {"Admin"}
    assert brand_b.pk not in direct_brand_ids(admin)
    admin.refresh_from_db()
    assert admin.first_name == "Alice"  # their own name they may change

    response = admin_client.post(url("staff_deactivate", admin.pk), {"reason": "Bye"})
    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.is_active

    with pytest.raises(SelfChangeRefused):
        do_set_roles(admin, Group.objects.all(), acting_user=admin, reason="x")
    with pytest.raises(SelfChangeRefused):
        do_grant_brands(admin, [brand_b], acting_user=admin, reason="x")
    with pytest.raises(SelfChangeRefused):
        do_deactivate_staff(admin, acting_user=admin, reason="x")


def test_auditor_reads_but_cannot_write(make_staff, client_for, target):
    auditor = client_for(make_staff("Auditor"))
    assert auditor.get(url("staff_detail", target.pk)).status_code == 200
    assert auditor.get(url("staff_edit", target.pk)).status_code == 403
    assert auditor.post(url("staff_deactivate", target.pk), {"reason": "x"}).status_code == 403
    assert auditor.post(url("staff_create"), _create_payload()).status_code == 403
    target.refresh_from_db()
    assert target.is_active


# --- brand scope: no escalation ------------------------------------------------------------


def test_admin_scoped_to_brand_a_cannot_grant_brand_b(scoped_admin, make_staff, brand_a, brand_b):
    assert brand_ids_for(scoped_admin) == {brand_a.pk}
    colleague = make_staff("Support", brands=[brand_a])
    with pytest.raises(PermissionDenied):
        do_grant_brands(colleague, [brand_b], acting_user=scoped_admin, reason="Please")
    assert direct_brand_ids(colleague) == {brand_a.pk}

    # Through the page: brand B is not even a valid choice, and nothing changes.
    client = verified_client(scoped_admin)
    response = client.post(
        url("staff_edit", colleague.pk),
        {
            "first_name": "T",
            "last_name": "T",
            "email": colleague.email,
            "brands": [brand_a.pk, brand_b.pk],
            "reason": "Please",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert direct_brand_ids(colleague) == {brand_a.pk}
    # Brand B's page is out of scope altogether.
    assert (
        client.post(
            url("brand_grant", brand_b.pk), {"user": colleague.pk, "reason": "x"}
        ).status_code
        == 404
    )
    assert direct_brand_ids(colleague) == {brand_a.pk}

    # Brand A they may grant.
    newcomer = make_staff("Support", brands=[])
    do_grant_brands(newcomer, [brand_a], acting_user=scoped_admin, reason="Joins team A")
    assert direct_brand_ids(newcomer) == {brand_a.pk}


def test_scoped_admin_cannot_reach_staff_of_other_brands_or_grant_wide_roles(
    scoped_admin, make_staff, brand_b
):
    outsider = make_staff("Support", brands=[brand_b])
    client = verified_client(scoped_admin)
    assert client.get(url("staff_edit", outsider.pk)).status_code == 403
    assert client.post(url("staff_deactivate", outsider.pk), {"reason": "x"}).status_code == 403
    outsider.refresh_from_db()
    assert outsider.is_active

    with pytest.raises(PermissionDenied):
        do_create_staff(
            acting_user=scoped_admin,
            username="wide",
            roles=[Group.objects.get(name="Auditor")],  # covers every brand
            password="a-long-enough-secret-9",
        )
    with pytest.raises(PermissionDenied):
        do_deactivate_staff(make_staff("Admin", brands=[]), acting_user=scoped_admin, reason="Coup")


def test_only_a_superuser_touches_a_superuser(admin, make_staff):
    boss = make_staff(None, is_superuser=True)
    with pytest.raises(PermissionDenied):
        do_deactivate_staff(boss, acting_user=admin, reason="x")


# --- roles ---------------------------------------------------------------------------------


def test_role_list_shows_member_counts(admin_client, target):
    body = admin_client.get(url("role_list")).content.decode()
    assert "Support" in body and "Auditor" in body and "Members" in body


def test_role_page_shows_the_permission_matrix(admin_client):
    role = Group.objects.get(name="Auditor")
    body = admin_client.get(url("role_detail", role.pk)).content.decode()
    assert "Back office" in body and "Staff" in body and "Can export the audit trail" in body
    assert "Historical" not in body


def test_role_permission_edit_is_audited(admin, admin_client, make_staff):
    role = Group.objects.get(name="Support")
    edit = admin_client.get(url("role_edit", role.pk))
    assert edit.status_code == 200 and 'name="permissions"' in edit.content.decode()
    current = list(role.permissions.values_list("pk", flat=True))
    view_user = Permission.objects.get(codename="view_user")
    response = admin_client.post(
        url("role_edit", role.pk),
        {"permissions": current + [view_user.pk], "reason": "Support looks up colleagues"},
    )
    assert response.status_code == 302
    assert role.permissions.filter(pk=view_user.pk).exists()
    event = AuditEvent.objects.get(action="role.permissions_changed")
    assert event.actor == admin and event.reason == "Support looks up colleagues"
    assert event.after["added"] == ["backoffice.view_user"] and event.after["removed"] == []
    assert "backoffice.view_user" not in event.before["permissions"]


def test_role_edit_needs_a_reason_and_keeps_the_ticks(admin_client):
    role = Group.objects.get(name="Support")
    view_user = Permission.objects.get(codename="view_user")
    response = admin_client.post(url("role_edit", role.pk), {"permissions": [view_user.pk]})
    assert response.status_code == 200
    body = response.content.decode()
    assert f'value="{view_user.pk}" id="perm-{view_user.pk}" checked' in body
    assert "This field is required" in body
    assert not role.permissions.filter(pk=view_user.pk).exists()


def test_nobody_edits_a_role_they_hold(admin, admin_client):
    role = Group.objects.get(name="Admin")
    response = admin_client.post(url("role_edit", role.pk), {"permissions": [], "reason": "Oops"})
    assert response.status_code == 200
    assert "another admin must change" in response.content.decode()
    assert role.permissions.exists()


def test_auditor_cannot_edit_roles(make_staff, client_for):
    auditor = client_for(make_staff("Auditor"))
    role = Group.objects.get(name="Support")
    assert auditor.get(url("role_detail", role.pk)).status_code == 200
    assert auditor.get(url("role_edit", role.pk)).status_code == 403
    assert auditor.post(url("role_edit", role.pk), {"reason": "x"}).status_code == 403


def test_create_role_copying_another(admin, admin_client):
    response = admin_client.post(
        url("role_create"),
        {
            "name": "VIP support",
            "copy_from": Group.objects.get(name="Support").pk,
            "reason": "VIP desk",
        },
    )
    role = Group.objects.get(name="VIP support")
    assert response.status_code == 302 and response["Location"] == url("role_edit", role.pk)
    assert set(role.permissions.all()) == set(Group.objects.get(name="Support").permissions.all())
    assert AuditEvent.objects.filter(action="role.created", actor=admin).count() == 1


def test_scoped_admin_cannot_make_a_role_cover_every_brand(scoped_admin, role_groups):
    role = Group.objects.create(name="Team A")
    access = Permission.objects.get(codename="access_brand")
    with pytest.raises(PermissionDenied):
        do_update_role_permissions(role, [access], acting_user=scoped_admin, reason="x")


def test_seed_roles_command_creates_and_resets(capsys, db):
    call_command("seed_roles")
    out = capsys.readouterr().out
    assert "8 roles in place" in out and "created" in out
    support = Group.objects.get(name="Support")
    support.permissions.clear()
    call_command("seed_roles")
    assert not support.permissions.exists()  # kept as the admins made it
    call_command("seed_roles", "--reset")
    assert support.permissions.exists()
    assert len(ensure_roles()) == len(roles.ROLES)


# --- brands --------------------------------------------------------------------------------


def test_brand_list_is_scoped(make_staff, client_for, brand_a, brand_b):
    support = client_for(make_staff("Support", brands=[brand_a]))
    body = support.get(url("brand_list")).content.decode()
    assert brand_a.name in body and brand_b.name not in body
    assert support.get(url("brand_detail", brand_b.pk)).status_code == 404


def test_create_and_edit_a_brand(admin, admin_client):
    response = admin_client.post(
        url("brand_create"),
        {"code": "gamma", "name": "Gamma", "jurisdiction": "mt", "default_currency": "eur"},
    )
    brand = Brand.objects.get(code="gamma")
    assert response.status_code == 302
    assert brand.jurisdiction == "MT" and brand.default_currency == "EUR"
    response = admin_client.post(
        url("brand_edit", brand.pk),
        {
            "code": "hacked",
            "name": "Gamma Games",
            "jurisdiction": "MT",
            "default_currency": "EUR",
            "is_active": "on",
            "reason": "Rebrand",
        },
    )
    assert response.status_code == 302
    brand.refresh_from_db()
    assert brand.name == "Gamma Games" and brand.code == "gamma"
    assert brand.history.count() == 2
    assert brand.history.first().history_user == admin
    assert {"brand.created", "brand.updated"} <= set(
        AuditEvent.objects.filter(actor=admin).values_list("action", flat=True)
    )


def test_brand_form_errors_keep_input(admin_client):
    response = admin_client.post(
        url("brand_create"),
        {"code": "delta", "name": "Delta", "jurisdiction": "Malta", "default_currency": "EUR"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="delta"' in body and "Two letters" in body


def test_grant_and_revoke_a_brand_from_its_page(admin, admin_client, target, brand_b):
    response = admin_client.post(
        url("brand_grant", brand_b.pk), {"user": target.pk, "reason": "Covers Beta"}
    )
    assert response.status_code == 302
    assert brand_b.pk in direct_brand_ids(target)
    assert target.history.first().history_user == admin
    body = admin_client.get(url("brand_detail", brand_b.pk)).content.decode()
    assert "sam-support" in body

    response = admin_client.post(url("brand_revoke", brand_b.pk, target.pk), {"reason": "Done"})
    assert response.status_code == 302
    assert brand_b.pk not in direct_brand_ids(target)
    assert list(
        AuditEvent.objects.filter(brand=brand_b).order_by("id").values_list("action", flat=True)
    ) == ["brand.granted", "brand.revoked"]


def test_grant_form_without_reason_keeps_the_choice(admin_client, target, brand_b):
    response = admin_client.post(url("brand_grant", brand_b.pk), {"user": target.pk})
    assert response.status_code == 200
    assert f'value="{target.pk}" selected' in response.content.decode()
    assert brand_b.pk not in direct_brand_ids(target)


# --- CSRF and search -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,needs_target",
    [
        ("staff_create", False),
        ("staff_edit", True),
        ("staff_deactivate", True),
        ("staff_reactivate", True),
        ("staff_reset_otp", True),
        ("staff_password", True),
        ("staff_end_sessions", True),
        ("staff_unlock", True),
        ("role_create", False),
        ("role_edit", "role"),
        ("brand_create", False),
        ("brand_edit", "brand"),
        ("brand_grant", "brand"),
    ],
)
def test_every_staff_page_post_needs_the_csrf_token(admin, target, brand_a, name, needs_target):
    client = verified_client(admin, Client(enforce_csrf_checks=True))
    args = []
    if needs_target is True:
        args = [target.pk]
    elif needs_target == "role":
        args = [Group.objects.get(name="Support").pk]
    elif needs_target == "brand":
        args = [brand_a.pk]
    assert client.post(url(name, *args), {"reason": "x"}).status_code == 403


def test_revoke_needs_the_csrf_token(admin, target, brand_a):
    client = verified_client(admin, Client(enforce_csrf_checks=True))
    response = client.post(url("brand_revoke", brand_a.pk, target.pk), {"reason": "x"})
    assert response.status_code == 403
    assert brand_a.pk in direct_brand_ids(target)


def test_search_finds_staff_by_id_username_and_email_for_view_user_only(admin, make_staff, target):
    for query in (str(target.pk), "sam-support", "SAM-SUPPORT@example.test", "sam-sup"):
        hits = [h for h in search_all(admin, query) if h.kind == "Staff"]
        assert [h.url for h in hits] == [url("staff_detail", target.pk)], query
    support = make_staff("Support")
    assert not [h for h in search_all(support, "sam-support") if h.kind == "Staff"]


def test_staff_list_exports_csv_and_audits_it(admin, admin_client, target):
    response = admin_client.get(url("staff_list") + "?q=sam&export=csv")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0] == "Id,Username,First name,Last name,Email,Active,Last sign-in"
    assert "sam-support" in body and "alice-admin" not in body
    assert AuditEvent.objects.filter(action="export.csv", actor=admin).count() == 1


def test_role_edit_keeps_permissions_the_editor_does_not_show(admin_client):
    role = Group.objects.get(name="Support")
    hidden = Permission.objects.get(content_type__app_label="sessions", codename="view_session")
    role.permissions.add(hidden)
    admin_client.post(url("role_edit", role.pk), {"permissions": [], "reason": "Strip it"})
    assert list(role.permissions.all()) == [hidden]


def test_scoped_admin_is_offered_only_roles_and_brands_they_may_grant(
    scoped_admin, make_staff, brand_a, brand_b
):
    client = verified_client(scoped_admin)
    body = client.get(url("staff_create")).content.decode()
    assert "Support" in body and ">Auditor<" not in body and ">Admin<" not in body
    assert brand_a.name in body and brand_b.name not in body
    response = client.post(
        url("staff_create"),
        _create_payload(roles=[Group.objects.get(name="Auditor").pk], brands=[brand_a.pk]),
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not User.objects.filter(username="nina-new").exists()


def test_staff_detail_query_count_is_bounded(
    admin, admin_client, target, brand_a, django_assert_max_num_queries
):
    for i in range(15):
        do_set_roles(
            target,
            [Group.objects.get(name="Risk" if i % 2 else "Support")],
            acting_user=admin,
            reason=f"Rota {i}",
        )
        verified_client(target)
    with django_assert_max_num_queries(40):
        response = admin_client.get(url("staff_detail", target.pk))
    assert response.status_code == 200
