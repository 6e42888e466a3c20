"""Every write about players: status, restrictions, notes, tags, logins, devices, instruments.

Staff actions take a keyword-only `acting_user`, run in one transaction, lock the player row,
check the transition or the permission, write the change with its history row (acting user
and reason), an audit event where the action is sensitive, and a timeline event, then check
the player is still inside the actor's scope. Platform writes (registration, logins, payment
instruments) take `acting_user=None` and are recorded as "system".

`assert_may_deposit` and its siblings are the one place that decides whether a player may do
an activity now; the payments, bonus and game services call them inside their own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from backoffice.audit import record_event, snapshot
from backoffice.scoping import check_in_scope

from . import timeline
from .exceptions import (
    EscalationRequired,
    InvalidInput,
    InvalidStatusTransition,
    NothingToChange,
    RestrictionError,
)
from .models import (
    NoteReason,
    Player,
    PlayerDevice,
    PlayerInstrument,
    PlayerLogin,
    PlayerNote,
    PlayerTag,
    Tag,
)

Status = Player.Status

MAX_NOTE_LENGTH = 4000
MAX_REASON_LENGTH = 300

# --------------------------------------------------------------------------------------------
# Permissions and escalation
# --------------------------------------------------------------------------------------------


def status_permission(current: str, target: str) -> str:
    """The permission a move from `current` to `target` needs.

    Self-exclusion belongs to responsible gambling, closing and blocking to risk and
    compliance; a plain suspension (and lifting it) is a first-line action.
    """
    involved = {current, target}
    if Status.SELF_EXCLUDED in involved:
        return "players.self_exclude_player"
    if Status.CLOSED in involved:
        return "players.close_player"
    if Status.BLOCKED in involved:
        return "players.block_player"
    return "players.change_player_status"


def roles_with_permissions(perms: Iterable[str]) -> dict[str, list[str]]:
    """For each permission, the names of the roles (groups) that hold it, in one query.

    Read from the database, not from the seeded defaults, so "needs escalation to …" follows
    what admins made of the roles.
    """
    wanted = {tuple(p.split(".", 1)) for p in perms}
    out: dict[str, list[str]] = {f"{a}.{c}": [] for a, c in wanted}
    if not wanted:
        return out
    cond = Q()
    for app_label, codename in wanted:
        cond |= Q(permissions__content_type__app_label=app_label, permissions__codename=codename)
    rows = (
        Group.objects.filter(cond)
        .values_list("name", "permissions__content_type__app_label", "permissions__codename")
        .order_by("name")
    )
    for name, app_label, codename in rows:
        key = f"{app_label}.{codename}"
        if key in out and name not in out[key]:
            out[key].append(name)
    return out


def require_permission(user, perm: str, doing: str) -> None:
    """Raise EscalationRequired, naming the roles that hold `perm`, unless `user` holds it.

    `doing` completes "Your role may not …" (e.g. "block players")."""
    if user.has_perm(perm):
        return
    roles = roles_with_permissions([perm])[perm]
    who = ", ".join(roles) if roles else "an administrator"
    raise EscalationRequired(
        f"Your role may not {doing}: this needs escalation to {who}.", permission=perm, roles=roles
    )


def _lock_player(player: Player | int, user) -> Player:
    """The player row, locked, and only if `user` may see it (else it does not exist for them)."""
    pk = getattr(player, "pk", player)
    return (
        Player.objects.restrict(user, "view")
        .select_for_update(of=("self",))
        .select_related("brand")
        .get(pk=pk)
    )


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("A reason is required.")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    return reason


def _sync(target: Player | int, source: Player) -> None:
    """Let a caller holding a stale instance see what the service wrote."""
    if isinstance(target, Player) and target is not source:
        for field in source._meta.concrete_fields:
            setattr(target, field.attname, getattr(source, field.attname))


# --------------------------------------------------------------------------------------------
# Status and restrictions
# --------------------------------------------------------------------------------------------


@transaction.atomic
def do_change_player_status(
    player: Player | int, new_status: str, *, acting_user, reason: str
) -> Player:
    """Move the player to `new_status` along `Player.STATUS_TRANSITIONS`, with a reason.

    Raises InvalidStatusTransition for a move the map does not allow (including "no move"),
    EscalationRequired when the user's role may not make it. Writes the history row, an audit
    event and a timeline event in the same transaction.
    """
    reason = _clean_reason(reason)
    locked = _lock_player(player, acting_user)
    if new_status not in Status.values:
        raise InvalidInput(f"{new_status!r} is not a player status.")
    old = locked.status
    if new_status not in locked.allowed_statuses():
        raise InvalidStatusTransition(
            f"A {locked.get_status_display().lower()} account cannot become "
            f"{Status(new_status).label.lower()}."
        )
    perm = status_permission(old, new_status)
    require_permission(acting_user, perm, f"make this account {Status(new_status).label.lower()}")
    before = snapshot(locked, ["status", "status_reason"])
    locked.status = new_status
    locked.status_reason = reason
    locked._history_user = acting_user
    locked._change_reason = reason
    locked.save(update_fields=["status", "status_reason"])
    summary = f"Status {Status(old).label} → {Status(new_status).label}"
    record_event(
        "players.status_changed",
        actor=acting_user,
        subject=locked,
        summary=f"{summary} for {locked.username}",
        reason=reason,
        before=before,
        after=snapshot(locked, ["status", "status_reason"]),
    )
    timeline.record(
        locked,
        "account",
        "status.changed",
        f"{summary}: {reason}",
        subject=locked,
        actor=acting_user,
        data={"from": old, "to": new_status, "reason": reason},
    )
    check_in_scope(acting_user, locked, "view")
    _sync(player, locked)
    return locked


@transaction.atomic
def do_set_player_restrictions(
    player: Player | int, changes: Mapping[str, bool], *, acting_user, reason: str
) -> Player:
    """Switch restrictions (`block_deposits`, …) on or off, all in one change with one reason.

    Only the restrictions whose value actually changes are written; if none does, nothing is
    written and NothingToChange is raised.
    """
    reason = _clean_reason(reason)
    unknown = set(changes) - set(Player.RESTRICTIONS)
    if unknown:
        raise InvalidInput(f"Unknown restriction: {', '.join(sorted(unknown))}.")
    locked = _lock_player(player, acting_user)
    require_permission(acting_user, "players.change_player_restrictions", "change restrictions")
    delta = {f: bool(v) for f, v in changes.items() if getattr(locked, f) != bool(v)}
    if not delta:
        raise NothingToChange("Those restrictions are already as asked.")
    before = snapshot(locked, list(delta))
    for field, value in delta.items():
        setattr(locked, field, value)
    locked._history_user = acting_user
    locked._change_reason = reason
    locked.save(update_fields=list(delta))
    words = [
        f"{Player.RESTRICTIONS[f].replace(' blocked', '').lower()} {'blocked' if v else 'allowed'}"
        for f, v in sorted(delta.items())
    ]
    summary = "Restrictions: " + ", ".join(words)
    record_event(
        "players.restrictions_changed",
        actor=acting_user,
        subject=locked,
        summary=f"{summary} for {locked.username}",
        reason=reason,
        before=before,
        after=snapshot(locked, list(delta)),
    )
    timeline.record(
        locked,
        "account",
        "restrictions.changed",
        f"{summary}: {reason}",
        subject=locked,
        actor=acting_user,
        data={"changes": delta, "reason": reason},
    )
    check_in_scope(acting_user, locked, "view")
    _sync(player, locked)
    return locked


# What each activity is refused by. Closed and self-excluded players may still withdraw: an
# operator must be able to pay out the balance of an account it closed or excluded.
_ACTIVITY_RULES: dict[str, tuple[str, frozenset[str], str]] = {
    # activity: (restriction field, statuses that allow it, words)
    "deposit": ("block_deposits", frozenset({Status.ACTIVE}), "deposit"),
    "withdraw": (
        "block_withdrawals",
        frozenset({Status.ACTIVE, Status.CLOSED, Status.SELF_EXCLUDED}),
        "withdraw",
    ),
    "play": ("block_play", frozenset({Status.ACTIVE}), "play"),
    "bonus": ("block_bonuses", frozenset({Status.ACTIVE}), "receive bonuses"),
}


def restriction_reason(player: Player, activity: str) -> str | None:
    """Why `player` (as loaded) may not do `activity`, or None if they may. No queries."""
    try:
        field, statuses, words = _ACTIVITY_RULES[activity]
    except KeyError:
        raise ValueError(f"Unknown activity {activity!r}.")
    if player.status not in statuses:
        return f"the account is {Status(player.status).label.lower()}"
    if getattr(player, field):
        return f"{words} is blocked on this account"
    return None


def _current_flags(player: Player | int) -> Player:
    """The player's status and restrictions as committed now.

    Inside a transaction the row is read FOR SHARE: a restriction being switched on
    concurrently (an UPDATE) makes this wait for its commit, and a restriction cannot be
    switched on while the caller's money movement is in flight.
    """
    pk = getattr(player, "pk", player)
    cols = ["id", "brand_id", "status", *Player.RESTRICTIONS]
    lock = " FOR SHARE" if connection.in_atomic_block else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(cols)} FROM {Player._meta.db_table} WHERE id = %s{lock}", [pk]
        )
        row = cursor.fetchone()
    if row is None:
        raise Player.DoesNotExist(f"No player #{pk}.")
    return Player(**dict(zip(cols, row, strict=True)))


def assert_may(player: Player | int, activity: str) -> None:
    """Raise RestrictionError unless the player may do `activity` right now.

    Reads the committed row (see `_current_flags`), so a stale instance in the caller cannot
    let a blocked deposit through.
    """
    current = _current_flags(player)
    why = restriction_reason(current, activity)
    if why is not None:
        _, _, words = _ACTIVITY_RULES[activity]
        raise RestrictionError(
            f"Player #{current.pk} may not {words}: {why}.",
            player_id=current.pk,
            activity=activity,
            reason=why,
        )


def assert_may_deposit(player: Player | int) -> None:
    """For payments: call inside the deposit's transaction before crediting anything."""
    assert_may(player, "deposit")


def assert_may_withdraw(player: Player | int) -> None:
    assert_may(player, "withdraw")


def assert_may_play(player: Player | int) -> None:
    assert_may(player, "play")


def assert_may_receive_bonus(player: Player | int) -> None:
    assert_may(player, "bonus")


# --------------------------------------------------------------------------------------------
# Notes and tags
# --------------------------------------------------------------------------------------------

NOTE_VISIBILITY = {
    NoteReason.Category.GENERAL: "players.view_playernote",
    NoteReason.Category.RISK: "players.view_risk_notes",
}


@transaction.atomic
def do_add_player_note(
    player: Player | int, *, reason: NoteReason | int, body: str, acting_user
) -> PlayerNote:
    """Add an internal note with a reason code. Risk-category reasons make a risk note, which
    only holders of `players.view_risk_notes` may write or read (in the timeline too)."""
    body = (body or "").strip()
    if not body:
        raise InvalidInput("Write the note.")
    if len(body) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"Keep the note under {MAX_NOTE_LENGTH} characters.")
    reason_id = getattr(reason, "pk", reason)
    reason = NoteReason.objects.filter(pk=reason_id, is_active=True).first()
    if reason is None:
        raise InvalidInput("Choose an active reason code.")
    if reason.category == NoteReason.Category.RISK:
        require_permission(acting_user, "players.view_risk_notes", "write risk notes")
    require_permission(acting_user, "players.add_playernote", "add notes")
    locked = _lock_player(player, acting_user)
    if body == reason.template.strip():
        raise InvalidInput("Complete the template before saving the note.")
    note = PlayerNote(
        player=locked,
        brand_id=locked.brand_id,
        category=reason.category,
        reason=reason,
        body=body,
        author=acting_user,
    )
    note._history_user = acting_user
    note.save()
    is_risk = reason.category == NoteReason.Category.RISK
    if is_risk:
        record_event(
            "players.risk_note_added",
            actor=acting_user,
            subject=locked,
            summary=f"Risk note ({reason.label}) on {locked.username}",
        )
    timeline.record(
        locked,
        "note",
        "risk_note.added" if is_risk else "note.added",
        f"{'Risk note' if is_risk else 'Note'} — {reason.label}: {body}",
        subject=locked,
        actor=acting_user,
        visibility=NOTE_VISIBILITY[reason.category],
        data={"note_id": note.pk, "reason": reason.code},
    )
    return note


@transaction.atomic
def do_tag_player(player: Player | int, tag: Tag | int, *, acting_user) -> PlayerTag:
    """Put a tag on a player. Tagging twice is refused, not silently ignored."""
    require_permission(acting_user, "players.add_playertag", "tag players")
    locked = _lock_player(player, acting_user)
    tag = Tag.objects.get(pk=getattr(tag, "pk", tag))
    if PlayerTag.objects.filter(player=locked, tag=tag).exists():
        raise NothingToChange(f"{locked.username} already has the tag {tag.name}.")
    link = PlayerTag(player=locked, tag=tag, brand_id=locked.brand_id, added_by=acting_user)
    link._history_user = acting_user
    link.save()
    timeline.record(
        locked,
        "account",
        "tag.added",
        f"Tagged {tag.name}",
        subject=locked,
        actor=acting_user,
        data={"tag": tag.name},
    )
    return link


@transaction.atomic
def do_untag_player(player: Player | int, tag: Tag | int, *, acting_user) -> None:
    """Take a tag off a player."""
    require_permission(acting_user, "players.delete_playertag", "remove tags")
    locked = _lock_player(player, acting_user)
    link = PlayerTag.objects.filter(player=locked, tag_id=getattr(tag, "pk", tag)).first()
    if link is None:
        raise NothingToChange("The player does not have that tag.")
    name = link.tag.name
    link._history_user = acting_user
    link.delete()
    timeline.record(
        locked,
        "account",
        "tag.removed",
        f"Tag {name} removed",
        subject=locked,
        actor=acting_user,
        data={"tag": name},
    )


def _clean_tag_fields(name: str, description: str, colour: str) -> tuple[str, str, str]:
    name = re.sub(r"\s+", " ", (name or "").strip())
    if not name:
        raise InvalidInput("Give the tag a name.")
    if len(name) > 50:
        raise InvalidInput("Keep the tag name under 50 characters.")
    if colour not in Tag.Colour.values:
        raise InvalidInput("Choose one of the colours offered.")
    return name, (description or "").strip()[:200], colour


@transaction.atomic
def do_create_tag(
    *, name: str, description: str = "", colour: str = Tag.Colour.GREY, acting_user
) -> Tag:
    """Add a tag to the shared vocabulary. Names are unique whatever their case."""
    require_permission(acting_user, "players.add_tag", "create tags")
    name, description, colour = _clean_tag_fields(name, description, colour)
    if Tag.objects.filter(name__iexact=name).exists():
        raise InvalidInput(f"A tag called {name} already exists.")
    tag = Tag(name=name, description=description, colour=colour)
    tag._history_user = acting_user
    tag.save()
    return tag


@transaction.atomic
def do_update_tag(tag: Tag | int, *, name: str, description: str, colour: str, acting_user) -> Tag:
    """Rename or recolour a tag (every tagged player shows the new name)."""
    require_permission(acting_user, "players.change_tag", "edit tags")
    tag = Tag.objects.select_for_update().get(pk=getattr(tag, "pk", tag))
    name, description, colour = _clean_tag_fields(name, description, colour)
    if Tag.objects.filter(name__iexact=name).exclude(pk=tag.pk).exists():
        raise InvalidInput(f"A tag called {name} already exists.")
    tag.name, tag.description, tag.colour = name, description, colour
    tag._history_user = acting_user
    tag.save()
    return tag


# --------------------------------------------------------------------------------------------
# Platform writes: registration, logins, devices, payment instruments
# --------------------------------------------------------------------------------------------

_PHONE_JUNK = re.compile(r"[\s\-().]")


def normalise_phone(raw: str) -> str:
    """E.164-ish: no spaces or punctuation, a leading 00 becomes +."""
    phone = _PHONE_JUNK.sub("", raw or "")
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone


@transaction.atomic
def do_register_player(
    brand,
    *,
    external_ref: str,
    username: str,
    email: str,
    first_name: str,
    last_name: str,
    country: str,
    currency: str,
    phone: str = "",
    date_of_birth=None,
    language: str = "en",
    registered_at: datetime | None = None,
    ip: str | None = None,
    device_id: str = "",
    user_agent: str = "",
    affiliate_code: str = "",
    acting_user=None,
) -> Player:
    """Create a player as the platform reports it: normalised contact data, the registration
    login, and the first timeline event. Unique (brand, external_ref) and (brand, username)
    are database constraints, so a replayed registration fails instead of duplicating."""
    registered_at = registered_at or timezone.now()
    player = Player(
        brand=brand,
        external_ref=external_ref.strip(),
        username=username.strip(),
        email=email.strip().lower(),
        phone=normalise_phone(phone),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        date_of_birth=date_of_birth,
        country=country.upper(),
        currency=currency.upper(),
        language=language,
        registered_at=registered_at,
        registration_ip=ip,
        registration_device=device_id,
        affiliate_code=affiliate_code,
        last_activity_at=registered_at,
    )
    player._history_user = acting_user
    player._change_reason = "Registered"
    player.full_clean(exclude=["tags"], validate_unique=False, validate_constraints=False)
    player.save()
    timeline.record(
        player,
        "account",
        "player.registered",
        f"Registered on {brand.name} from {country.upper()}"
        + (f" (affiliate {affiliate_code})" if affiliate_code else ""),
        subject=player,
        actor=acting_user,
        actor_label="" if acting_user else "platform",
        occurred_at=registered_at,
    )
    if ip:
        do_record_login(
            player,
            ip=ip,
            device_id=device_id,
            user_agent=user_agent,
            occurred_at=registered_at,
            country=country.upper(),
            timeline_event=False,
        )
    return player


_DEVICE_TABLE = PlayerDevice._meta.db_table
_DEVICE_UPSERT = """
INSERT INTO {PlayerDevice_table} (player_id, brand_id, device_id, user_agent, first_seen_at,
                                  last_seen_at, last_ip, login_count)
VALUES (%s, %s, %s, %s, %s, %s, %s, 1)
ON CONFLICT (player_id, device_id) DO UPDATE SET
    login_count = {PlayerDevice_table}.login_count + 1,
    last_seen_at = GREATEST({PlayerDevice_table}.last_seen_at, EXCLUDED.last_seen_at),
    first_seen_at = LEAST({PlayerDevice_table}.first_seen_at, EXCLUDED.first_seen_at),
    last_ip = CASE WHEN EXCLUDED.last_seen_at >= {PlayerDevice_table}.last_seen_at
                   THEN EXCLUDED.last_ip ELSE {PlayerDevice_table}.last_ip END,
    user_agent = CASE WHEN EXCLUDED.user_agent <> '' THEN EXCLUDED.user_agent
                      ELSE {PlayerDevice_table}.user_agent END
RETURNING (xmax = 0) AS inserted
""".replace("{PlayerDevice_table}", _DEVICE_TABLE)


@transaction.atomic
def do_record_login(
    player: Player | int,
    *,
    ip: str,
    device_id: str = "",
    user_agent: str = "",
    occurred_at: datetime | None = None,
    country: str = "",
    succeeded: bool = True,
    timeline_event: bool = True,
    acting_user=None,
) -> PlayerLogin:
    """Record a login reported by the platform: the login row, the device roll-up (one upsert,
    safe when two logins arrive at once), the player's last activity and a timeline event
    (saying so when the device is new to this player)."""
    occurred_at = occurred_at or timezone.now()
    if not isinstance(player, Player):
        player = Player.objects.only("id", "brand_id", "username").get(pk=player)
    login = PlayerLogin.objects.create(
        player_id=player.pk,
        brand_id=player.brand_id,
        occurred_at=occurred_at,
        ip=ip,
        device_id=device_id,
        user_agent=user_agent[:200],
        country=country.upper()[:2],
        succeeded=succeeded,
    )
    new_device = False
    if device_id and succeeded:
        with connection.cursor() as cursor:
            cursor.execute(
                _DEVICE_UPSERT,
                [player.pk, player.brand_id, device_id, user_agent[:200], occurred_at,
                 occurred_at, ip],
            )  # fmt: skip
            new_device = bool(cursor.fetchone()[0])
    if succeeded:
        # A plain UPDATE on purpose: last activity is not historised (see Player.history).
        Player.objects.filter(pk=player.pk).filter(
            Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=occurred_at)
        ).update(last_activity_at=occurred_at)
    if timeline_event:
        if not succeeded:
            summary, action = f"Failed login from {ip}", "login.failed"
        elif new_device:
            summary, action = (
                f"Login from a new device ({device_id[:12]}) at {ip}",
                "login.new_device",
            )
        else:
            summary, action = f"Login from {ip}", "login.succeeded"
        timeline.record(
            player,
            "login",
            action,
            summary,
            actor=acting_user,
            actor_label="" if acting_user else "platform",
            occurred_at=occurred_at,
            data={"ip": ip, "device_id": device_id, "country": country},
        )
    return login


@transaction.atomic
def do_record_instrument(
    player: Player | int,
    *,
    fingerprint: str,
    kind: str,
    label: str,
    seen_at: datetime | None = None,
    acting_user=None,
) -> tuple[PlayerInstrument, bool]:
    """Remember that the player used a payment instrument; returns (instrument, created).

    For the payments services: call it when a deposit or withdrawal names an instrument. A new
    instrument writes a timeline event; a known one only moves its last-seen time.
    """
    if kind not in PlayerInstrument.Kind.values:
        raise InvalidInput(f"{kind!r} is not an instrument kind.")
    fingerprint = (fingerprint or "").strip()
    if not fingerprint:
        raise InvalidInput("An instrument needs the PSP's fingerprint.")
    seen_at = seen_at or timezone.now()
    if not isinstance(player, Player):
        player = Player.objects.only("id", "brand_id").get(pk=player)
    instrument, created = PlayerInstrument.objects.get_or_create(
        player_id=player.pk,
        fingerprint=fingerprint,
        defaults={
            "brand_id": player.brand_id,
            "kind": kind,
            "label": label[:100],
            "first_seen_at": seen_at,
            "last_seen_at": seen_at,
        },
    )
    if created:
        timeline.record(
            player,
            "payment",
            "instrument.added",
            f"New payment method: {instrument.label}",
            subject=instrument,
            actor=acting_user,
            actor_label="" if acting_user else "platform",
            occurred_at=seen_at,
            data={"kind": kind},
        )
    elif seen_at > instrument.last_seen_at:
        PlayerInstrument.objects.filter(pk=instrument.pk).update(last_seen_at=seen_at)
        instrument.last_seen_at = seen_at
    return instrument, created
