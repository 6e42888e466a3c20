"""Speed-ups for django-tables2 on pages rendered all day.

1. django-tables2 calls `inspect.signature` on a column's render function for every cell it
   draws (50 rows x 10 columns = 500 calls a page). The signature of a function never changes,
   so it is computed once per function here. Installed from `BackofficeConfig.ready()`.

2. `render_rows(table, context)` draws the body rows of a table (what the `{% for row %}`
   loop of django-tables2's template does) in Python: the per-column work that does not depend
   on the row (which render method, which of its arguments, the `<td>` attributes, whether the
   value is a choice to display) is decided once per column, and each row is one string join.
   The Table classes stay the definition of the columns (headers, ordering, `render_FOO`,
   linkify, CSV export); the cells come out as django-tables2 draws them. The list layout's
   table template (`layouts/_table.html`) uses it through `{% table_rows %}`.
"""

from __future__ import annotations

import functools
import html

from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.template import Context
from django.template.base import render_value_in_context
from django.template.loader import get_template
from django.templatetags.l10n import localize as localize_filter
from django.templatetags.l10n import unlocalize as unlocalize_filter
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, SafeString, mark_safe
from django_tables2 import utils
from django_tables2.columns.base import LinkTransform
from django_tables2.columns.checkboxcolumn import CheckBoxColumn
from django_tables2.columns.linkcolumn import BaseLinkColumn
from django_tables2.columns.manytomanycolumn import ManyToManyColumn
from django_tables2.columns.templatecolumn import TemplateColumn
from django_tables2.rows import BoundRow

_original_signature = utils.signature


@functools.lru_cache(maxsize=4096)
def _cached(func, bound: bool):
    args, keywords = _original_signature(func)
    if bound and args:
        args = args[1:]  # the bound method's self, which inspect drops for bound methods
    return args, keywords


def _signature(fn):
    func = getattr(fn, "__func__", None)
    try:
        if func is not None:
            return _cached(func, True)
        return _cached(fn, False)
    except TypeError:  # unhashable callables: no cache
        return _original_signature(fn)


def install() -> None:
    if utils.signature is not _signature:
        utils.signature = _signature


def esc(value) -> str:
    """`conditional_escape` without its lazy-string wrapper (hundreds of calls a table): safe
    text as it is, anything else escaped. Same output."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def fast_format_html(format_string: str, *args) -> SafeString:
    """`format_html` for cells drawn hundreds of times a page (positional `{}` only): each
    argument through `esc`, the result marked safe. Same output as `format_html`."""
    return SafeString(format_string.format(*[esc(a) for a in args]))


# --- body rows --------------------------------------------------------------------------------

_CELL_ARGS = ("value", "record", "column", "bound_column", "bound_row", "table")
_SENTINEL = 7_391_028_374_651  # an id no row has: where a link's id goes in its URL


def _url_pattern(link) -> tuple[list[str], list] | None:
    """For `linkify=("view", {"pk": A("pk")})`: the URL cut where the ids go, and the accessors
    of those ids, so each row joins strings instead of calling reverse(). None when the link
    is anything else (a callable, attributes on the <a>, fixed arguments): reverse() it is."""
    if type(link) is not LinkTransform or link.url is not None or link.attrs:
        return None
    args = link.reverse_args
    viewname, kwargs = args.get("viewname"), args.get("kwargs")
    if set(args) != {"viewname", "kwargs"} or not isinstance(viewname, str) or not kwargs:
        return None
    if isinstance(viewname, utils.Accessor) or not all(
        isinstance(v, utils.Accessor) for v in kwargs.values()
    ):
        return None
    names = list(kwargs)
    try:
        url = reverse(viewname, kwargs={n: _SENTINEL + i for i, n in enumerate(names)})
    except NoReverseMatch:
        return None
    parts, accessors, rest = [], [], url
    for i, name in enumerate(names):
        marker = str(_SENTINEL + i)
        if rest.count(marker) != 1:
            return None
        head, rest = rest.split(marker)
        parts.append(head)
        accessors.append(utils.A(kwargs[name]))
    parts.append(rest)
    return parts, accessors


def _has_callable(*dicts) -> bool:
    for d in dicts:
        for value in (d or {}).values():
            if callable(value) or (isinstance(value, dict) and _has_callable(value)):
                return True
    return False


def _attrs_html(attrs) -> str:
    """`AttributeDict.as_html()` (a `format_html_join` per row) as one join: same output."""
    return " ".join(f'{esc(k)}="{esc(v)}"' for k, v in attrs._iteritems())


def _checkbox_pattern(column, bound_column) -> tuple[str, str] | None:
    """For a plain CheckBoxColumn (never checked, fixed attributes): its `<input>` cut where the
    value goes, so a cell is one join instead of an AttributeDict drawn per row."""
    if type(column) is not CheckBoxColumn or column.checked is not None:
        return None
    extra = column.attrs.get("td__input") or column.attrs.get("input") or {}
    if any(callable(v) for v in extra.values()):
        return None
    attrs = dict({"type": "checkbox", "name": bound_column.name, "value": _SENTINEL}, **extra)
    drawn = f"<input {utils.AttributeDict(attrs).as_html()} />"
    if drawn.count(str(_SENTINEL)) != 1:
        return None
    before, after = drawn.split(str(_SENTINEL))
    return before, after


class _Column:
    """What one column needs to draw a cell, decided once per table render."""

    def __init__(self, table, bound_column):
        self.bound_column = bc = bound_column
        self.column = column = bc.column
        self.accessor = accessor = utils.A(bc.accessor)
        self.bits = tuple(accessor.bits)
        self.path = utils.A(accessor.rpartition(accessor.SEPARATOR)[0])
        self.remainder = accessor.rpartition(accessor.SEPARATOR)[2]
        self.link = bc.link
        self.m2m = isinstance(column, ManyToManyColumn)
        self.text_link = isinstance(column, BaseLinkColumn) and column.text is not None
        self.empty_values = column.empty_values
        self.localize = column.localize
        self.render = bc.render
        args, keywords = utils.signature(bc.render)
        # call_with_appropriate: everything when the function takes **kwargs, else exactly the
        # arguments it names; a name we cannot supply means the function is not called.
        self.wants = None if keywords else tuple(args)
        self.callable_args = self.wants is not None and any(a not in _CELL_ARGS for a in args)
        # The <td> attributes are the same on every row unless a value in them is computed.
        table_attrs, column_attrs = table.attrs or {}, column.attrs or {}
        self.static_td = not _has_callable(
            table_attrs.get("td"), table_attrs.get("cell"),
            column_attrs.get("td"), column_attrs.get("cell"),
        )  # fmt: skip
        self.td = bc.attrs["td"].as_html() if self.static_td else None
        self._choices: dict[type, bool] = {}
        self.url_pattern = _url_pattern(self.link) if self.link else None
        self.checkbox = _checkbox_pattern(column, bc)
        # A TemplateColumn drawn by its template file: render the compiled template in the
        # page's context (django-tables2 flattens that context and runs the context
        # processors again, for every cell).
        self.template = None
        if (
            isinstance(column, TemplateColumn)
            and column.template_name
            and not column.template_code
            and type(column).render is TemplateColumn.render
            and bc.render == column.render
        ):
            self.template = get_template(column.template_name).template

    def _resolve(self, accessor, bits, record):
        """Accessor.resolve, with plain attribute access on model instances (which are not
        subscriptable: Accessor tries `obj[bit]` first and pays an exception per step)."""
        current = record
        for bit in bits:
            if not isinstance(current, models.Model) or hasattr(current, "__getitem__"):
                return accessor.resolve(record)
            try:
                current = getattr(current, bit)
            except (TypeError, AttributeError):
                return accessor.resolve(record)  # raises as django-tables2 would
            if callable(current):
                if getattr(current, "alters_data", False):
                    return accessor.resolve(record)  # raises
                if not getattr(current, "do_not_call_in_templates", False):
                    current = current(*accessor.callable_args, **accessor.callable_kwargs)
            if current is None:
                break
        return current

    def _is_choice(self, record) -> bool:
        kind = type(record)
        known = self._choices.get(kind)
        if known is None:
            try:
                field = self.accessor.get_field(record)
            except FieldDoesNotExist:
                field = None
            known = self._choices[kind] = bool(getattr(field, "choices", ()))
        return known

    def value(self, record):
        """(value, found): BoundRow._get_and_render_with's lookup, get_FOO_display included."""
        if self._is_choice(record):
            penultimate = self._resolve_quiet(self.path, self.bits[:-1], record)
            if isinstance(penultimate, models.Model):
                display = getattr(penultimate, f"get_{self.remainder}_display", None)
                if display:
                    return display(), True
        if not self.remainder:
            return None, True  # an empty accessor: django-tables2 leaves the value at None
        try:
            return self._resolve(self.accessor, self.bits, record), True
        except Exception:  # noqa: BLE001 - as django-tables2: non-field columns render empty
            return None, not self.text_link

    def _resolve_quiet(self, accessor, bits, record):
        try:
            return self._resolve(accessor, bits, record)
        except Exception:  # noqa: BLE001 - Accessor.penultimate resolves quietly
            return None

    def link_to(self, content, record, kwargs):
        if self.url_pattern is not None:
            parts, accessors = self.url_pattern
            ids = [self._resolve(a, a.bits, record) for a in accessors]
            if all(type(i) is int and i >= 0 for i in ids):
                tail = zip(ids, parts[1:], strict=True)
                url = parts[0] + "".join(str(i) + part for i, part in tail)
                return SafeString(f'<a href="{esc(url)}">{esc(content)}</a>')
        return self.link(content, **kwargs)

    def cell(self, row: BoundRow, record, table):
        value, found = self.value(record)
        bc = self.bound_column
        if not found:  # a link column with fixed text whose accessor failed
            value = None
        elif value in self.empty_values or (self.m2m and not value.exists()):
            return bc.default
        if self.checkbox is not None:
            before, after = self.checkbox
            return SafeString(before + esc(value) + after)
        parent = getattr(table, "context", None)
        if self.template is not None and parent is not None and parent.template is not None:
            extra = self.column.get_context_data(
                record=record, table=table, value=value, bound_column=bc, bound_row=row
            )
            with parent.update(extra):
                content = self.template.render(parent)
            if not self.link:
                return content
            kwargs = {
                "value": value, "record": record, "column": self.column,
                "bound_column": bc, "bound_row": row, "table": table,
            }  # fmt: skip
            return self.link_to(content, record, kwargs)
        if self.wants is None or self.callable_args or self.link:
            kwargs = {
                "value": value,
                "record": record,
                "column": self.column,
                "bound_column": bc,
                "bound_row": row,
                "table": table,
            }
            if self.wants is None:
                content = self.render(**kwargs)
            elif self.callable_args:
                content = None  # call_with_appropriate: an argument it cannot have
            else:
                content = self.render(**{name: kwargs[name] for name in self.wants})
            return self.link_to(content, record, kwargs) if self.link else content
        kwargs = {}
        for name in self.wants:
            if name == "value":
                kwargs[name] = value
            elif name == "record":
                kwargs[name] = record
            elif name == "column":
                kwargs[name] = self.column
            elif name == "bound_column":
                kwargs[name] = bc
            elif name == "bound_row":
                kwargs[name] = row
            else:
                kwargs[name] = table
        return self.render(**kwargs)

    def td_attrs(self, record, content) -> str:
        if self.static_td:
            return self.td
        bc = self.bound_column
        bc.current_value, bc.current_record = content, record
        return _attrs_html(bc.attrs["td"])

    def html(self, content, context) -> str:
        if self.localize is not None:
            content = (localize_filter if self.localize else unlocalize_filter)(content)
        if type(content) is SafeString:
            return content
        if type(content) is str and context.autoescape:
            return SafeString(html.escape(content))  # conditional_escape, without its wrapper
        return render_value_in_context(content, context)


def render_rows(table, context) -> SafeString:
    """The `<tr>` rows of the table's current page, as django-tables2's template draws them."""
    columns = [_Column(table, bc) for bc in table.columns]
    static_rows = not table.row_attrs
    parts: list[str] = []
    append = parts.append
    any_row = False
    for row in table.paginated_rows:
        any_row = True
        if type(row) is not BoundRow:  # pinned rows: django-tables2's own way
            append(_generic_row(row, context))
            continue
        record = row.record
        if static_rows:
            append('<tr class="odd">' if row.row_counter % 2 else '<tr class="even">')
        else:
            append(f"<tr {_attrs_html(row.attrs)}>")
        for col in columns:
            content = col.cell(row, record, table)
            append(f"<td {col.td_attrs(record, content)}>{col.html(content, context)}</td>")
        append("</tr>")
    if not any_row and table.empty_text:
        append(
            f'<tr><td colspan="{len(table.columns)}">'
            f"{render_value_in_context(table.empty_text, context)}</td></tr>"
        )
    return mark_safe("\n".join(parts))


def _generic_row(row, context) -> str:
    cells = [
        f"<td {column.attrs['td'].as_html()}>{render_value_in_context(cell, context)}</td>"
        for column, cell in row.items()
    ]
    return f"<tr {row.attrs.as_html()}>{''.join(cells)}</tr>"


# --- filter-form drop-downs ---------------------------------------------------------------------

_PLAIN = Context(autoescape=True)


def _stringformat(value) -> str:
    """`{{ value|stringformat:'s' }}` then autoescape, as Django's widget templates do."""
    text = "%s" % (str(value) if isinstance(value, tuple) else value)
    return conditional_escape(mark_safe(text) if isinstance(value, SafeData) else text)


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html."""
    out = []
    for name, value in attrs.items():
        if value is not False:
            out.append(f" {conditional_escape(name)}")
            if value is not True:
                out.append(f'="{_stringformat(value)}"')
    return "".join(out)


def _render_select(widget, name, value, attrs=None, renderer=None) -> SafeString:
    """Django's select.html and select_option.html, in Python: one template render per option
    made a filter form with a few drop-downs a fifth of a list page's time."""
    w = widget.get_context(name, value, attrs)["widget"]
    out = [f'<select name="{conditional_escape(w["name"])}"{_attrs(w["attrs"])}>']
    for group_name, group_choices, _index in w["optgroups"]:
        if group_name:
            out.append(f'\n  <optgroup label="{render_value_in_context(group_name, _PLAIN)}">')
        for option in group_choices:
            label = render_value_in_context(option["label"], _PLAIN)
            out.append(
                f'\n  <option value="{_stringformat(option["value"])}"'
                f"{_attrs(option['attrs'])}>{label}</option>\n"  # the included file's newline
            )
        if group_name:
            out.append("\n  </optgroup>")
    out.append("\n</select>")
    return mark_safe("".join(out))


def speed_up_selects(form) -> None:
    """Draw the form's plain Select and SelectMultiple widgets without the template engine."""
    for field in form.fields.values():
        widget = field.widget
        if (
            type(widget) in (forms.Select, forms.SelectMultiple)
            and widget.template_name == type(widget).template_name
            and widget.option_template_name == type(widget).option_template_name
        ):
            widget.render = functools.partial(_render_select, widget)
