"""The mixins and generic views every app's pages are built from.

- `StaffRequiredMixin`: signed in, active, and holding a model permission (else 403).
- `ScopedObjectMixin`: the object comes from `Model.objects.restrict(user, action)`, so an
  object outside the user's brands answers 404 as if it did not exist.
- `ObjectListView`: FilterSet + django-tables2 Table + capped pagination + CSV export + saved
  filters; an htmx request gets only the table fragment.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.generic import DetailView, TemplateView
from django_tables2 import RequestConfig
from django_tables2.paginators import LazyPaginator

from .audit import record_event
from .scoping import permission_name
from .tables_speed import speed_up_selects

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ExplainedHttp404(Http404):
    """A 404 whose message tells staff what to do; the error page shows it (others' are not)."""


class StaffRequiredMixin(LoginRequiredMixin):
    """Signed-in staff holding `permission_required` (a string or a list, all needed)."""

    permission_required: str | Iterable[str] | None = None

    def get_permissions(self) -> list[str]:
        perm = self.permission_required
        if perm is None:
            return []
        return [perm] if isinstance(perm, str) else list(perm)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not request.user.is_active:
            raise PermissionDenied("Your account is deactivated.")
        if not all(request.user.has_perm(p) for p in self.get_permissions()):
            raise PermissionDenied("Your role does not allow this page.")
        return super().dispatch(request, *args, **kwargs)


class ScopedObjectMixin(StaffRequiredMixin):
    """Narrows `get_queryset()` to the user's scope for `permission_action`."""

    model = None
    permission_action = "view"

    def get_permissions(self) -> list[str]:
        perms = super().get_permissions()
        if not perms and self.model is not None:
            perms = [permission_name(self.model, self.permission_action)]
        return perms

    def get_base_queryset(self):
        return self.model._default_manager.all()

    def get_queryset(self):
        return self.get_base_queryset().restrict(self.request.user, self.permission_action)


class ScopedDetailView(ScopedObjectMixin, DetailView):
    template_name_suffix = "_detail"


def neutralise(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    def write(self, value):
        return value


def stream_csv(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([neutralise(v) for v in row])


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]):
    response = StreamingHttpResponse(stream_csv(header, rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CappedPaginator(LazyPaginator):
    """Never counts; refuses pages past `LIST_MAX_OFFSET` rows (filter instead)."""

    max_per_page = 200  # django-tables2 takes ?per_page= from the URL: keep a page a page

    def __init__(self, object_list, per_page, **kwargs):
        super().__init__(object_list, max(1, min(int(per_page), self.max_per_page)), **kwargs)

    def validate_number(self, number):
        number = super().validate_number(number)
        if (number - 1) * self.per_page > settings.LIST_MAX_OFFSET:
            raise EmptyPage("Too deep: narrow the filters to reach these rows.")
        return number


def _single_valued(query) -> bool:
    """True when no join of `query` can multiply rows (no reverse foreign key, no M2M)."""
    for join in query.alias_map.values():
        field = getattr(join, "join_field", None)
        if field is not None and (field.one_to_many or field.many_to_many):
            return False
    return True


def bounded_count(queryset, limit: int | None = None) -> tuple[int, bool]:
    """(count, capped): counts at most `limit` + 1 rows, so a big table costs no full scan."""
    limit = limit or settings.LIST_COUNT_LIMIT
    n = queryset.order_by()[: limit + 1].count()
    return (limit, True) if n > limit else (n, False)


class _PagesById:
    """A queryset whose deep pages (a slice with an offset) are read in two steps: the page's
    ids first (`SELECT pk ... ORDER BY ... OFFSET n LIMIT m`, which an index holding the filter
    columns and the key answers without touching the table), then those rows. One OFFSET over
    full rows made PostgreSQL walk the primary key reading every skipped row from the table."""

    def __getitem__(self, k):
        if (
            isinstance(k, slice)
            and k.start
            and self._result_cache is None
            and not self.query.distinct
            and not self.query.combinator
        ):
            ids = list(QuerySet.__getitem__(self.values_list("pk", flat=True), k))
            return self.filter(pk__in=ids)
        return super().__getitem__(k)


@functools.cache
def _pages_by_id_class(cls):
    return type(f"PagesById{cls.__name__}", (_PagesById, cls), {})


def pages_by_id(queryset):
    """`queryset`, with its deep pages read ids first (see `_PagesById`); opt-in per list."""
    if isinstance(queryset, _PagesById):
        return queryset
    clone = queryset.all()
    clone.__class__ = _pages_by_id_class(type(queryset))
    return clone


class ObjectListView(ScopedObjectMixin, TemplateView):
    """One list page: filters in the query string, a sortable table, export, saved filters.

    Subclasses set `model`, `filterset_class`, `table_class`, `title`; optionally
    `export_fields` [(header, lookup), ...] for CSV export and `base_queryset()` for joins.
    """

    template_name = "layouts/list.html"
    # The fragment an htmx request gets. Partials are looked up in the named template only,
    # so a page that extends the layout still serves the layout's partial.
    table_partial = "layouts/list.html#table"
    filterset_class = None
    table_class = None
    title = ""
    per_page = 50
    export_fields: list[tuple[str, str]] | None = None
    export_permission: str | None = None
    count_rows = True

    def get_filterset(self):
        qs = self.get_queryset()
        return self.filterset_class(self.request.GET or None, queryset=qs, request=self.request)

    def get(self, request, *args, **kwargs):
        filterset = self.get_filterset()
        speed_up_selects(filterset.form)
        if filterset.is_bound and not filterset.is_valid():
            qs = filterset.queryset.none()
        else:
            qs = filterset.qs
        if qs.query.distinct and not qs.query.distinct_fields and _single_valued(qs.query):
            # django-filter marks multi-value filters DISTINCT; when every join follows a
            # foreign key forwards no row can repeat, and DISTINCT would make PostgreSQL sort
            # (and the bounded count wrap) the whole match.
            qs.query.distinct = False
        if request.GET.get("export") == "csv":
            return self.export(qs)
        # No request= here: django-tables2 would configure the table with its default
        # (counting) Paginator first; RequestConfig below configures it once, lazily.
        table = self.table_class(qs)
        try:
            # Not silent: django-tables2 would otherwise answer a too-deep page with page 1.
            RequestConfig(
                request,
                paginate={
                    "per_page": self.per_page,
                    "paginator_class": CappedPaginator,
                    "silent": False,
                },
            ).configure(table)
        except EmptyPage:
            raise ExplainedHttp404("That page is beyond what a list shows; narrow the filters.")
        context = self.get_context_data(filterset=filterset, table=table, **kwargs)
        if self.count_rows:
            context["row_count"], context["row_count_capped"] = bounded_count(qs)
        if request.htmx and request.htmx.target == "list-table":
            response = self.render_to_response(context, template_name=self.table_partial)
        else:
            response = self.render_to_response(context)
        # One URL, two bodies: without this the browser's back button shows the cached fragment.
        patch_vary_headers(response, ["HX-Request"])
        return response

    def render_to_response(self, context, template_name=None, **kwargs):
        return self.response_class(
            request=self.request,
            template=[template_name or self.template_name],
            context=context,
            using=self.template_engine,
            **kwargs,
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        from .models import SavedFilter

        list_name = self.request.resolver_match.view_name if self.request.resolver_match else ""
        context.update(
            title=self.title or self.model._meta.verbose_name_plural.capitalize(),
            list_name=list_name,
            can_export=bool(self.export_fields) and self.may_export(),
            saved_filters=SavedFilter.objects.filter(user=self.request.user, list_name=list_name),
            querystring=self.request.GET.urlencode(),
        )
        return context

    def may_export(self) -> bool:
        perm = self.export_permission
        return perm is None or self.request.user.has_perm(perm)

    def export(self, qs):
        if not self.export_fields or not self.may_export():
            raise PermissionDenied("You may not export this list.")
        headers = [h for h, _ in self.export_fields]
        lookups = [lookup for _, lookup in self.export_fields]
        name = self.model._meta.model_name
        record_event(
            "export.csv",
            actor=self.request.user,
            summary=f"Exported {self.model._meta.verbose_name_plural} as CSV",
            after={"list": name, "filters": self.request.GET.dict()},
        )
        rows = qs.values_list(*lookups).iterator(chunk_size=2000)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return csv_response(f"{name}-{stamp}.csv", headers, rows)
