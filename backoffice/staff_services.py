"""Writes about staff, roles and brand scopes. Every one is audited."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from . import roles
from .audit import record_event


def _permissions_by_name(names: set[str]) -> list[Permission]:
    wanted = {tuple(n.split(".", 1)) for n in names}
    perms = Permission.objects.select_related("content_type").filter(
        codename__in={c for _, c in wanted}
    )
    return [p for p in perms if (p.content_type.app_label, p.codename) in wanted]


@transaction.atomic
def ensure_roles(*, reset: bool = False, acting_user=None) -> list[Group]:
    """Create the seeded roles that are missing, with their default permissions.

    Existing roles keep what admins made of them unless `reset` is true.
    """
    groups = []
    for name in roles.ROLES:
        group, created = Group.objects.get_or_create(name=name)
        if created or reset:
            perms = _permissions_by_name(roles.ROLE_PERMISSIONS[name])
            group.permissions.set(perms)
            record_event(
                "role.seeded",
                actor=acting_user,
                actor_label=None if acting_user else "system",
                summary=f"Role {name} {'reset' if not created else 'created'} with defaults",
                after={"permissions": sorted(roles.ROLE_PERMISSIONS[name])},
            )
        groups.append(group)
    return groups
