"""Reads about players, always scoped to the user who asks.

- `search_players`: the one matcher behind the player list's search box and global search:
  exact, indexed lookups (id, external ref, username, email, phone) and a name prefix served
  by the trigram index, never a leading-wildcard LIKE.
- `timeline_page`: one keyset page of the unified timeline, filtered by visibility in SQL.
- `linked_accounts`: players sharing a device, an IP within a short window, a payment
  instrument, or the same identity, with the reasons.
- `change_history`, `player_notes`, `player_devices`, `recent_logins`: the player page's panels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Lookup, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

from .models import (
    NoteReason,
    Player,
    PlayerDevice,
    PlayerInstrument,
    PlayerLogin,
    PlayerNote,
    TimelineEvent,
)


def players_for(user, action: str = "view") -> QuerySet[Player]:
    """The players `user` may `action`, in their brands."""
    return Player.objects.restrict(user, action)


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


class IPrefix(Lookup):
    """`col ILIKE 'value%'`: a case-insensitive prefix the trigram GIN index on the column
    serves (Django's `istartswith` compiles to UPPER(col) LIKE …, which it does not)."""

    lookup_name = "iprefix"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [connection.ops.prep_for_like_query(value) + "%"]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", (*lhs_params, *rhs_params)


PlayerLookup = Callable[[str], "QuerySet | None"]
_EXTRA_LOOKUPS: list[PlayerLookup] = []


def register_player_lookup(func: PlayerLookup) -> PlayerLookup:
    """Let another app find players by its own identifiers (a PSP reference, say).

    `func(query)` returns a queryset of player ids (`values("player_id")`) or None when the
    query cannot be one of its identifiers. It must be an exact, indexed lookup.
    """
    _EXTRA_LOOKUPS.append(func)
    return func


_ID = re.compile(r"#?(\d{1,18})")
_PHONEISH = re.compile(r"\+?[\d\s\-().]{6,}")
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
MIN_NAME_PREFIX = 2


def player_search_q(query: str) -> Q | None:
    """The condition matching `query`, or None when it cannot match anything.

    Every branch is an equality on an indexed column or a name prefix on the trigram-indexed
    last name, so the OR of them is a bitmap OR of index scans even at millions of players.
    """
    from .services import normalise_phone

    q = " ".join((query or "").split())[:150]
    if not q:
        return None
    cond = Q(external_ref=q)
    if m := _ID.fullmatch(q):
        cond |= Q(pk=int(m.group(1)))
    if "@" in q:
        return cond | Q(email__iexact=q)
    cond |= Q(username__iexact=q)
    if _PHONEISH.fullmatch(q):
        phone = normalise_phone(q)
        cond |= Q(phone=phone)
        if not phone.startswith("+"):
            cond |= Q(phone="+" + phone)
    if _LETTERS.search(q) and len(q) >= MIN_NAME_PREFIX:
        words = q.split(" ")
        cond |= IPrefix(F("last_name"), q)
        if len(words) >= 2:
            first, rest = words[0], " ".join(words[1:])
            last, before = words[-1], " ".join(words[:-1])
            # "Anna Maria Rossi": first name + last name, or the last name said first.
            cond |= Q(IPrefix(F("first_name"), before), IPrefix(F("last_name"), last))
            cond |= Q(IPrefix(F("last_name"), first), IPrefix(F("first_name"), rest))
    for lookup in _EXTRA_LOOKUPS:
        ids = lookup(q)
        if ids is not None:
            cond |= Q(pk__in=ids)
    return cond


def search_players(queryset: QuerySet[Player], query: str) -> QuerySet[Player]:
    cond = player_search_q(query)
    return queryset.none() if cond is None else queryset.filter(cond)


# --------------------------------------------------------------------------------------------
# Timeline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineCursor:
    """Where a timeline page ended: the last row's (occurred_at, id). Rows are ordered by that
    pair, so rows sharing a timestamp are split across pages without gaps or repeats."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        micros = int(self.occurred_at.timestamp()) * 1_000_000 + self.occurred_at.microsecond
        return f"{micros}.{self.id}"

    @classmethod
    def decode(cls, raw: str) -> TimelineCursor:
        """Parse `encode`'s output; ValueError on anything else."""
        m = re.fullmatch(r"(-?\d{1,17})\.(\d{1,18})", raw or "")
        if not m:
            raise ValueError("Not a timeline position.")
        micros = int(m.group(1))
        seconds, micro = divmod(micros, 1_000_000)
        stamp = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micro)
        return cls(stamp, int(m.group(2)))

    @classmethod
    def after(cls, event: TimelineEvent) -> TimelineCursor:
        return cls(event.occurred_at, event.pk)


@dataclass
class TimelinePage:
    events: list[TimelineEvent]
    next_cursor: TimelineCursor | None


def visibility_q(user) -> Q:
    """Timeline rows `user` may see: public ones, and those whose permission they hold.

    The user's permissions are computed once per request (Django caches them on the user), and
    the filter runs in SQL, so a page is full even when many rows are hidden.
    """
    perms = sorted(user.get_all_permissions())
    return Q(visibility="") | Q(visibility__in=perms)


TIMELINE_PAGE_SIZE = 50


def timeline_page(
    player: Player,
    user,
    *,
    kinds: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: TimelineCursor | None = None,
    limit: int = TIMELINE_PAGE_SIZE,
) -> TimelinePage:
    """One page of `player`'s timeline, newest first, for `user`.

    `player` must come from a scoped queryset (the caller checked the user may see it). One
    query: an index range scan on (player, occurred_at, id) — or (player, kind, …) for one
    kind — starting at the cursor, whatever the size of the player's history.
    """
    qs = TimelineEvent.objects.filter(player_id=player.pk).filter(visibility_q(user))
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if cursor is not None:
        qs = qs.filter(
            TupleLessThan(Tuple(F("occurred_at"), F("id")), (cursor.occurred_at, cursor.id))
        )
    order = ("-occurred_at", "-id")
    kinds = sorted({k for k in kinds if k})
    if len(kinds) == 1:
        qs = qs.filter(kind=kinds[0])
    elif kinds:
        # Several kinds: one index range scan per kind, each stopping after a page, merged —
        # instead of collecting every event of those kinds and sorting them.
        branches = [qs.filter(kind=kind).order_by(*order)[: limit + 1] for kind in kinds]
        qs = branches[0].union(*branches[1:], all=True)
    rows = list(qs.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return TimelinePage(rows, TimelineCursor.after(rows[-1]) if more and rows else None)


# --------------------------------------------------------------------------------------------
# Linked accounts
# --------------------------------------------------------------------------------------------

LINK_IP_WINDOW = timedelta(hours=1)
LINK_LOGINS_EXAMINED = 200  # the player's most recent logins compared by IP
LINK_LIMIT = 50  # candidates per reason

_LINKS_SQL = """
WITH me AS (SELECT id, email, first_name, last_name, date_of_birth
            FROM {player} WHERE id = %(pid)s),
recent AS (SELECT ip, occurred_at FROM {login}
           WHERE player_id = %(pid)s AND succeeded ORDER BY occurred_at DESC LIMIT %(logins)s)
(SELECT other.player_id, 'device' AS why, min(other.device_id) AS detail
   FROM {device} mine JOIN {device} other
     ON other.device_id = mine.device_id AND other.player_id <> mine.player_id
  WHERE mine.player_id = %(pid)s
  GROUP BY other.player_id LIMIT %(lim)s)
UNION ALL
(SELECT other.player_id, 'ip', min(host(other.ip))
   FROM recent JOIN {login} other
     ON other.ip = recent.ip
    AND other.occurred_at BETWEEN recent.occurred_at - %(window)s
                              AND recent.occurred_at + %(window)s
  WHERE other.player_id <> %(pid)s AND other.succeeded
  GROUP BY other.player_id LIMIT %(lim)s)
UNION ALL
(SELECT other.player_id, 'instrument', min(other.label)
   FROM {instrument} mine JOIN {instrument} other
     ON other.fingerprint = mine.fingerprint AND other.player_id <> mine.player_id
  WHERE mine.player_id = %(pid)s
  GROUP BY other.player_id LIMIT %(lim)s)
UNION ALL
(SELECT p.id, 'email', '' FROM {player} p, me
  WHERE upper(p.email::text) = upper(me.email::text) AND p.id <> me.id LIMIT %(lim)s)
UNION ALL
(SELECT p.id, 'identity', '' FROM {player} p, me
  WHERE p.date_of_birth = me.date_of_birth AND upper(p.last_name::text) = upper(me.last_name::text)
    AND upper(p.first_name::text) = upper(me.first_name::text) AND p.id <> me.id
  LIMIT %(lim)s)
"""

_REASON_WORDS = {
    "device": "Same device {detail}",
    "ip": "Same IP {detail} within {window}",
    "instrument": "Same payment method {detail}",
    "email": "Same email address",
    "identity": "Same name and date of birth",
}


@dataclass
class LinkedAccount:
    player: Player
    reasons: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)


@dataclass
class LinkedAccounts:
    visible: list[LinkedAccount]
    hidden_count: int  # linked players in brands the user does not cover


def _window_words(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def linked_accounts(
    player: Player, user, *, ip_window: timedelta = LINK_IP_WINDOW
) -> LinkedAccounts:
    """Other players who share something with `player`, each with why. Two queries.

    Players in brands the user does not cover are counted, not shown: the user learns a link
    exists (and can escalate) without seeing another brand's customer.
    """
    tables = {
        "player": Player._meta.db_table,
        "login": PlayerLogin._meta.db_table,
        "device": PlayerDevice._meta.db_table,
        "instrument": PlayerInstrument._meta.db_table,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            _LINKS_SQL.format(**tables),
            {
                "pid": player.pk,
                "logins": LINK_LOGINS_EXAMINED,
                "lim": LINK_LIMIT,
                "window": ip_window,
            },
        )
        rows = cursor.fetchall()
    by_player: dict[int, list[tuple[str, str]]] = {}
    for pid, why, detail in rows:
        by_player.setdefault(pid, []).append((why, detail or ""))
    if not by_player:
        return LinkedAccounts([], 0)
    visible_players = {
        p.pk: p
        for p in Player.objects.in_brands(user).filter(pk__in=by_player).select_related("brand")
    }
    window = _window_words(ip_window)
    links = []
    for pid, reasons in by_player.items():
        other = visible_players.get(pid)
        if other is None:
            continue
        link = LinkedAccount(other)
        for why, detail in reasons:
            link.kinds.add(why)
            link.reasons.append(_REASON_WORDS[why].format(detail=detail, window=window).strip())
        links.append(link)
    links.sort(key=lambda link: (-len(link.kinds), -link.player.pk))
    return LinkedAccounts(links, len(by_player) - len(links))


# --------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------


@dataclass
class HistoryEntry:
    record: Any
    changes: list[tuple[str, Any, Any]]


def change_history(player: Player, limit: int = 10) -> list[HistoryEntry]:
    """The latest `limit` history rows of the player with what each changed. One query."""
    records = list(
        player.history.select_related("history_user").order_by("-history_date", "-history_id")[
            : limit + 1
        ]
    )
    entries = []
    for i, record in enumerate(records[:limit]):
        older = records[i + 1] if i + 1 < len(records) else None
        if older is None:
            changes = []
        else:
            delta = record.diff_against(older)
            changes = [(c.field, c.old, c.new) for c in delta.changes]
        entries.append(HistoryEntry(record, changes))
    return entries


def player_notes(player: Player, user, *, category: str, limit: int = 20) -> list[PlayerNote]:
    """The latest notes of one category that `user` may read (risk needs its permission)."""
    if category == NoteReason.Category.RISK:
        if not user.has_perm("players.view_risk_notes"):
            return []
    elif not user.has_perm("players.view_playernote"):
        return []
    return list(
        PlayerNote.objects.filter(player_id=player.pk, category=category)
        .select_related("reason", "author")
        .order_by("-created_at", "-id")[:limit]
    )


def player_devices(player: Player, limit: int = 10) -> list[PlayerDevice]:
    return list(PlayerDevice.objects.filter(player_id=player.pk).order_by("-last_seen_at")[:limit])


def recent_logins(player: Player, limit: int = 10) -> list[PlayerLogin]:
    return list(
        PlayerLogin.objects.filter(player_id=player.pk).order_by("-occurred_at", "-id")[:limit]
    )
