"""Choice lists of filter forms (brands, PSPs, currencies, tags, staff), kept between requests.

A list page's filter form offers a few small reference tables as drop-downs; reading each
from PostgreSQL on every page view (and once more to validate the chosen value) was a third
of a list page's queries. `cached_objects(queryset)` keeps the rows of such a queryset in the
process, keyed by its SQL, under a *generation* token held in the cache (Redis). Any save or
delete of a model in `WATCHED` (and any change of roles and permissions, which decide who
counts as a ticket worker) replaces the token, at once and again after commit, in whichever
process made the change; every process then reads its lists afresh. A field that offers a
model not in `WATCHED` is refused at start-up, so a list cannot go stale silently.

`CachedModelChoiceFilter` is django-filter's `ModelChoiceFilter` with choices and validation
from that cache: the same choices, the same "Select a valid choice" error, no query.
"""

from __future__ import annotations

import logging
import threading

import django_filters
from django import forms
from django.core.exceptions import EmptyResultSet, ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django_filters.fields import ModelChoiceField as FilterModelChoiceField

from . import generations

logger = logging.getLogger(__name__)

TOKEN_KEY = "choices-generation"
# Models whose rows may be offered from the cache, and the tables that decide which of them
# a queryset selects (roles and permissions for "staff who may work tickets").
WATCHED = {
    "backoffice.brand",
    "backoffice.user",
    "payments.currency",
    "payments.psp",
    "players.tag",
    "auth.group",
    "auth.permission",
    "guardian.userobjectpermission",
    "guardian.groupobjectpermission",
}
WATCHED_M2M = {"user_groups", "user_user_permissions", "group_permissions"}

_NOTHING = object()
_lock = threading.Lock()
_local: dict = {"token": None, "lists": {}}


def _token() -> str | None:
    return generations.read(TOKEN_KEY, what="Filter choice cache")


def invalidate() -> None:
    generations.bump(TOKEN_KEY, what="filter choice cache")
    with _lock:
        _local["token"], _local["lists"] = None, {}


def cached_objects(queryset) -> list:
    """The rows of `queryset` (a small reference table), from the cache when still valid."""
    label = queryset.model._meta.label_lower
    if label not in WATCHED:
        raise ImproperlyConfigured(f"{label} is not in cached_choices.WATCHED")
    token = _token()
    if token is None:
        return list(queryset)
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # .none()
        return []
    key = (label, queryset.db, sql, repr(params))
    with _lock:
        if _local["token"] != token:
            _local["token"], _local["lists"] = token, {}
        rows = _local["lists"].get(key)
    if rows is None:
        rows = list(queryset)
        with _lock:
            if _local["token"] == token:
                _local["lists"][key] = rows
    return rows


def _changed(sender=None, **kwargs) -> None:
    meta = getattr(sender, "_meta", None)
    if meta is None or meta.label_lower not in WATCHED:
        return
    invalidate()
    transaction.on_commit(invalidate, using=kwargs.get("using"))


def _m2m_changed(sender=None, action="", **kwargs) -> None:
    meta = getattr(sender, "_meta", None)
    if meta is None or not action.startswith("post_") or meta.model_name not in WATCHED_M2M:
        return
    invalidate()
    transaction.on_commit(invalidate, using=kwargs.get("using"))


def connect() -> None:
    """Called from BackofficeConfig.ready, so every process invalidates what it changes."""
    post_save.connect(_changed, dispatch_uid="cached_choices.save")
    post_delete.connect(_changed, dispatch_uid="cached_choices.delete")
    m2m_changed.connect(_m2m_changed, dispatch_uid="cached_choices.m2m")


class _CachedIterator(forms.models.ModelChoiceIterator):
    def _rows(self):
        return cached_objects(self.queryset)

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        if getattr(self.field, "null_label", None) is not None:
            yield (self.field.null_value, self.field.null_label)
        for obj in self._rows():
            yield self.choice(obj)

    def __len__(self):
        extra = (self.field.empty_label is not None) + (
            getattr(self.field, "null_label", None) is not None
        )
        return len(self._rows()) + extra

    def __bool__(self):
        return self.field.empty_label is not None or bool(self._rows())


class CachedChoicesMixin:
    """For a ModelChoiceField: choices and validation from `cached_objects`, no query."""

    iterator = _CachedIterator

    def to_python(self, value):
        null_label = getattr(self, "null_label", None)
        if null_label is not None and value == self.null_value:
            return value
        if value in self.empty_values:
            return None
        self.validate_no_null_characters(value)
        model = self.queryset.model
        key = self.to_field_name or "pk"
        if isinstance(value, model):
            value = getattr(value, key)
        field = model._meta.pk if key == "pk" else model._meta.get_field(key)
        try:
            wanted = field.to_python(value)
        except (ValueError, TypeError, ValidationError):
            wanted = _NOTHING
        for obj in cached_objects(self.queryset):
            if getattr(obj, key) == wanted:
                return obj
        raise ValidationError(
            self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value}
        )


class CachedModelChoiceField(CachedChoicesMixin, forms.ModelChoiceField):
    pass


class CachedFilterModelChoiceField(CachedChoicesMixin, FilterModelChoiceField):
    pass


class CachedModelChoiceFilter(django_filters.ModelChoiceFilter):
    """django-filter's ModelChoiceFilter, its choices read through `cached_objects`."""

    field_class = CachedFilterModelChoiceField
