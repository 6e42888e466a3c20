"""A member of staff's permissions and brands, kept in the session between requests.

Without it every page asks PostgreSQL three times who the user is allowed to be (their own
permissions, their roles' permissions, their brands through guardian) before doing its work.
The answer changes only when an admin changes roles, permissions or brand grants, so it is
kept in the session beside a *generation* token held in the cache (Redis). Every change to
those tables (model and m2m signals below, connected at start-up in every process: web,
Celery, management commands) replaces the token, at once and again after the transaction
commits, so the next request of every session computes its answer afresh. The stored answer
also ages out after `MAX_AGE` seconds, so a change made behind the signals' back (raw SQL)
takes effect within minutes.

Superusers are not cached: Django and `brand_ids_for` answer for them without a query.
"""

from __future__ import annotations

import logging
import time

from django.contrib.auth.backends import ModelBackend
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from . import generations

logger = logging.getLogger(__name__)

GENERATION_KEY = "permission-generation"
SESSION_KEY = "_staff_perms"
MAX_AGE = 300  # seconds

_backend = ModelBackend()


def current_generation() -> str | None:
    """The token the cached answers must carry; None when the cache cannot be reached."""
    return generations.read(GENERATION_KEY, what="Permission cache")


def invalidate() -> None:
    """Make every session compute its permissions and brands again on its next request."""
    generations.bump(GENERATION_KEY, what="permission cache")


def _changed(sender=None, **kwargs) -> None:
    # Now, so that requests from here on do not keep the old answer; and after commit, so
    # that a request which read the old rows while the change was in flight does not either.
    invalidate()
    transaction.on_commit(invalidate, using=kwargs.get("using"))


def _m2m_changed(sender=None, action="", **kwargs) -> None:
    if action.startswith("post_"):
        _changed(sender, **kwargs)


def prime(request) -> None:
    """Give `request.user` its permissions, brands and role names from the session, or compute
    and keep them there; after this, `user.has_perm()`, `brand_ids_for(user)` and
    `user._role_names` cost no query."""
    user = request.user
    if not user.is_authenticated or not user.is_active or user.is_superuser:
        return
    token = current_generation()
    if token is None:
        return
    now = time.time()
    kept = request.session.get(SESSION_KEY)
    if (
        kept
        and kept.get("token") == token
        and kept.get("user") == user.pk
        and 0 <= now - kept.get("at", 0) < MAX_AGE
    ):
        user._user_perm_cache = set(kept["user_perms"])
        user._group_perm_cache = set(kept["group_perms"])
        user._perm_cache = user._user_perm_cache | user._group_perm_cache
        brands = kept["brands"]
        user._brand_ids_cache = None if brands is None else frozenset(brands)
        user._role_names = list(kept["roles"])
        return
    from .scoping import brand_ids_for

    user_perms = _backend.get_user_permissions(user)
    group_perms = _backend.get_group_permissions(user)
    brands = brand_ids_for(user)
    roles = sorted(user.groups.values_list("name", flat=True))
    user._role_names = roles
    request.session[SESSION_KEY] = {
        "token": token,
        "user": user.pk,
        "at": now,
        "user_perms": sorted(user_perms),
        "group_perms": sorted(group_perms),
        "brands": None if brands is None else sorted(brands),
        "roles": roles,
    }


def connect() -> None:
    """Invalidate on every change to who may do what (called from BackofficeConfig.ready)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    user_model = get_user_model()
    for model in (
        Permission,
        Group,
        apps.get_model("guardian", "UserObjectPermission"),
        apps.get_model("guardian", "GroupObjectPermission"),
        apps.get_model("backoffice", "Brand"),
    ):
        uid = f"permission_cache.{model._meta.label}"
        post_save.connect(_changed, sender=model, dispatch_uid=f"{uid}.save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"{uid}.delete")
    for through in (
        user_model.groups.through,
        user_model.user_permissions.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(
            _m2m_changed, sender=through, dispatch_uid=f"permission_cache.{through._meta.label}"
        )
