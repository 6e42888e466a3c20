"""Brand scoping: one place decides which rows a member of staff may see or touch.

Staff are scoped to brands through the guardian object permission `backoffice.access_brand` on
`Brand` rows (few objects, so guardian's generic tables stay small). Every scoped table carries
a `brand_id` column (denormalised where the brand is several joins away), so scoping a query of
millions of rows is one `brand_id IN (...)` filter on an indexed column.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import models

BRAND_PERMISSION = "backoffice.access_brand"


def brand_ids_for(user) -> frozenset[int] | None:
    """The ids of the brands `user` may work with, or None for every brand.

    Superusers and holders of the global `access_brand` permission see every brand. The answer
    is cached on the user object for the length of the request.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_brand_ids_cache", False)
    if cached is not False:
        return cached
    if user.is_superuser or user.has_perm(BRAND_PERMISSION):
        ids = None
    else:
        from guardian.shortcuts import get_objects_for_user

        from .models import Brand

        ids = frozenset(
            get_objects_for_user(
                user, BRAND_PERMISSION, klass=Brand, accept_global_perms=False
            ).values_list("pk", flat=True)
        )
    user._brand_ids_cache = ids
    return ids


def forget_brand_cache(user) -> None:
    """Drop the per-request cache after brand grants or roles change (the session's copy is
    dropped by `permission_cache`, on the same change)."""
    for attr in (
        "_brand_ids_cache", "_perm_cache", "_user_perm_cache", "_group_perm_cache", "_role_names",
    ):  # fmt: skip
        if hasattr(user, attr):
            delattr(user, attr)


def permission_name(model: type[models.Model], action: str) -> str:
    opts = model._meta
    return f"{opts.app_label}.{action}_{opts.model_name}"


class ScopedQuerySet(models.QuerySet):
    """A queryset that knows how to narrow itself to what a user may see.

    Models declare `brand_path` (the lookup from the model to its brand, e.g. "brand" or
    "player__brand"; "" when the model is a Brand; None when the model has no brand) and may
    set `brand_nullable = True` when rows without a brand are visible to anyone holding the
    model permission (staff events, say).
    """

    def restrict(self, user, action: str = "view") -> ScopedQuerySet:
        """Rows of this queryset that `user` may `action` (view, change, …); none if no perm."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if not user.has_perm(permission_name(self.model, action)):
            return self.none()
        return self.in_brands(user)

    def in_brands(self, user) -> ScopedQuerySet:
        """Only the brand filter, for callers that checked the permission themselves."""
        path = getattr(self.model, "brand_path", None)
        if path is None:
            return self
        ids = brand_ids_for(user)
        if ids is None:
            return self
        field = f"{path}_id" if path else "pk"
        flt = models.Q(**{f"{field}__in": ids})
        if getattr(self.model, "brand_nullable", False):
            flt |= models.Q(**{f"{field}__isnull": True})
        return self.filter(flt)


def user_may(user, model: type[models.Model], action: str = "view") -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and user.has_perm(permission_name(model, action))
    )


def check_in_scope(user, obj: models.Model, action: str = "change") -> None:
    """Raise PermissionDenied unless `obj` is (still) inside the user's scope.

    Services call this after a write, inside the transaction, so a write that moved an object
    out of the actor's brands is rolled back.
    """
    model = type(obj)
    if not model._default_manager.filter(pk=obj.pk).restrict(user, action).exists():
        raise PermissionDenied(f"{model._meta.verbose_name} is outside your scope.")
