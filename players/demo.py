"""The players of the demo casino: thousands of realistic accounts, with stories planted.

`seed(ctx)` writes `ctx.players` players across the demo brands (half Aurora, a third Nordic,
the rest Satoshi), each with names, contact data and a language from their country, a history
of logins from their devices and IPs (households and a multi-accounting ring share them, so
linked accounts exist), tags, notes and risk notes, the status changes and restrictions some
of them carry, their change history and their timeline.

Planted stories (`STORIES`): a player who self-excluded on Nordic Spins and plays on Aurora
Casino under the same name, email, date of birth and device; a ring of four Aurora accounts
sharing one device and IP, farming the welcome bonus; a VIP; and the player whose withdrawal
the support demo asks about.

Rows are written with COPY in a few statements (100,000 players in seconds), ids reserved from
the sequences first so every table can reference them. Deterministic: every draw comes from
`ctx.rng_for("players")` and every date from `ctx.now`. Idempotent: a second run finds the
demo players and writes nothing.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection

from backoffice import roles
from backoffice.bulkload import bulk_load

from .defaults import ensure_note_reasons
from .models import (
    NoteReason,
    Player,
    PlayerDevice,
    PlayerLogin,
    PlayerNote,
    PlayerTag,
    Tag,
    TimelineEvent,
)

DEMO_PREFIX = "demo-"
BRAND_WEIGHTS = {"aurora": 0.5, "nordic": 0.3, "satoshi": 0.2}

LOCALES = {
    "MT": "en_GB", "DE": "de_DE", "IE": "en_IE", "FI": "fi_FI", "AT": "de_AT", "SE": "sv_SE",
    "CA": "en_CA", "BR": "pt_BR", "JP": "ja_JP", "NZ": "en_NZ", "MX": "es_MX",
}  # fmt: skip
LANGUAGE = {
    "MT": "en", "DE": "de", "IE": "en", "FI": "fi", "AT": "de", "SE": "sv", "CA": "en",
    "BR": "pt", "JP": "ja", "NZ": "en", "MX": "es",
}  # fmt: skip
DIAL = {
    "MT": "+356", "DE": "+49", "IE": "+353", "FI": "+358", "AT": "+43", "SE": "+46",
    "CA": "+1", "BR": "+55", "JP": "+81", "NZ": "+64", "MX": "+52",
}  # fmt: skip
MAIL_DOMAINS = {
    "MT": ("maltanet.net", "gmail.com", "outlook.com"), "DE": ("web.de", "gmx.de", "gmail.com"),
    "IE": ("eircom.net", "gmail.com", "hotmail.com"), "FI": ("luukku.com", "gmail.com"),
    "AT": ("gmx.at", "aon.at", "gmail.com"), "SE": ("telia.com", "hotmail.se", "gmail.com"),
    "CA": ("shaw.ca", "gmail.com", "outlook.com"), "BR": ("uol.com.br", "gmail.com"),
    "JP": ("yahoo.co.jp", "gmail.com"), "NZ": ("xtra.co.nz", "gmail.com"),
    "MX": ("prodigy.net.mx", "gmail.com", "hotmail.com"),
}  # fmt: skip
# Faker has no Maltese locale: English first names, Maltese surnames.
MALTESE_SURNAMES = (
    "Borg", "Camilleri", "Vella", "Farrugia", "Zammit", "Galea", "Grech", "Attard", "Spiteri",
    "Azzopardi", "Micallef", "Mifsud", "Caruana", "Cassar", "Debono", "Pace", "Sultana", "Fenech",
)  # fmt: skip
IP_PREFIX = {
    "MT": (31, 46), "DE": (79, 91), "IE": (86, 89), "FI": (84, 91), "AT": (77, 84),
    "SE": (78, 90), "CA": (24, 99), "BR": (177, 189), "JP": (126, 133), "NZ": (122, 125),
    "MX": (187, 201),
}  # fmt: skip
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (Linux; Android 15; SM-S921B) AppleWebKit/537.36 Chrome/131.0 Mobile",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "CasinoApp/4.12 (iOS 18.1; iPhone15,2)",
    "CasinoApp/4.12 (Android 14; Pixel 8)",
)
AFFILIATES = ("CASINOGURU", "SLOTSREVIEW", "NORDICBONUS", "CRYPTOSPINS", "STREAMER-KAI", "")

TAGS = {
    # name: (colour, description)
    "VIP": ("warning", "Managed by the VIP team; high value."),
    "High roller": ("primary", "Regular stakes above 50 EUR."),
    "Bonus hunter": ("danger", "Takes bonuses and withdraws with minimal play."),
    "Watchlist": ("danger", "Risk is watching this account."),
    "Affiliate traffic": ("info", "Came through an affiliate campaign."),
    "Sportsbook crossover": ("secondary", "Also bets on the sportsbook."),
    "Newsletter opt-out": ("secondary", "Does not want marketing messages."),
}

STATUS_WEIGHTS = [
    (Player.Status.ACTIVE, 0.93), (Player.Status.SUSPENDED, 0.02),
    (Player.Status.BLOCKED, 0.01), (Player.Status.CLOSED, 0.02),
    (Player.Status.SELF_EXCLUDED, 0.02),
]  # fmt: skip
STATUS_REASONS = {
    Player.Status.SUSPENDED: (
        ("Chargeback received on the last deposit; pending investigation", roles.RISK),
        ("Documents requested twice without answer", roles.SUPPORT),
        ("Unusual deposit velocity", roles.RISK),
    ),
    Player.Status.BLOCKED: (
        ("Confirmed duplicate account", roles.RISK),
        ("Stolen card used for deposits", roles.RISK),
    ),
    Player.Status.CLOSED: (
        ("Player asked to close the account", roles.SUPPORT),
        ("Moving abroad; account closed at the player's request", roles.SUPPORT),
    ),
    Player.Status.SELF_EXCLUDED: (
        ("Self-exclusion for 6 months requested by the player", roles.COMPLIANCE),
        ("Self-exclusion for 12 months requested by the player", roles.COMPLIANCE),
        ("Indefinite self-exclusion through the national register", roles.COMPLIANCE),
    ),
}
KYC_WEIGHTS = [(0, 0.25), (1, 0.35), (2, 0.3), (3, 0.1)]

GENERAL_NOTES = {
    "contact": "Player contacted us by chat about: how long withdrawals take.\n"
    "What we told them: up to 24 h for review, then the bank's time.",
    "payment-query": "Player asked about payment reference: the last deposit.\n"
    "Status found: credited.\nNext step promised: none needed.",
    "complaint": "Complaint about: the slot lobby loading slowly.\n"
    "Player's expected outcome: a fix.\nAgreed follow-up: passed to game operations.",
    "kyc-request": "Documents requested: proof of address.\nDeadline given to the player: 14 days.",
    "rg-concern": "Signs observed: long late-night sessions.\n"
    "Tools offered (limits, time-out, self-exclusion): deposit limit.\nPlayer's answer: set 200.",
}
RISK_NOTES = {
    "risk-bonus-abuse": "Bonus / campaign: welcome bonus.\nPattern seen: minimal play, "
    "withdrawal right after wagering.\nAction taken: bonuses blocked.",
    "risk-chargeback": "Payment reference: first deposit.\nPSP / reason code: 10.4 fraud.\n"
    "Action taken: deposits blocked until resolved.",
    "risk-multi-account": "Linked accounts: four Aurora accounts from the same affiliate.\n"
    "Shared device / IP / instrument: one device, one IP, logins minutes apart.\n"
    "Action taken: bonuses blocked on the first account; watching the others.",
}
RANDOM_RISK_NOTES = ("risk-bonus-abuse", "risk-chargeback")


# --------------------------------------------------------------------------------------------
# The planted stories
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """A hand-written player. `device` and `ip` shared between stories link the accounts."""

    ref: str
    brand: str
    first_name: str
    last_name: str
    email: str
    country: str
    dob: date
    registered_days_ago: int
    device: str
    ip: str
    status: str = Player.Status.ACTIVE
    status_reason: str = ""
    status_days_ago: int = 0
    kyc_level: int = 1
    tags: tuple[str, ...] = ()
    block_bonuses: bool = False
    affiliate: str = ""
    risk_note: str = ""
    notes: tuple[str, ...] = ()


STORIES: tuple[Story, ...] = (
    Story("demo-story-excluded", "nordic", "Johanna", "Lindqvist", "johanna.lindqvist@telia.com",
          "SE", date(1988, 3, 14), 700, "a41f9c07d2e35b18", "78.72.14.201",
          status=Player.Status.SELF_EXCLUDED,
          status_reason="Self-exclusion for 12 months requested by the player (Spelpaus)",
          status_days_ago=41, kyc_level=2),
    Story("demo-story-excluded-twin", "aurora", "Johanna", "Lindqvist",
          "johanna.lindqvist@telia.com", "FI", date(1988, 3, 14), 9, "a41f9c07d2e35b18",
          "84.249.61.17", kyc_level=1, affiliate="NORDICBONUS"),
    Story("demo-story-ring-1", "aurora", "Marek", "Novak", "mnovak.spins@gmail.com", "AT",
          date(1995, 7, 2), 26, "5ee1c0ffee5ee1c0", "77.119.200.45", kyc_level=1,
          tags=("Bonus hunter",), block_bonuses=True, affiliate="CASINOGURU",
          risk_note="risk-multi-account"),
    Story("demo-story-ring-2", "aurora", "Lena", "Hofer", "lena.hofer.95@gmx.at", "AT",
          date(1996, 1, 19), 25, "5ee1c0ffee5ee1c0", "77.119.200.45", kyc_level=1,
          tags=("Bonus hunter",), affiliate="CASINOGURU"),
    Story("demo-story-ring-3", "aurora", "Tomas", "Wagner", "t.wagner.lucky@gmail.com", "DE",
          date(1993, 11, 8), 24, "5ee1c0ffee5ee1c0", "77.119.200.45", kyc_level=0,
          affiliate="CASINOGURU"),
    Story("demo-story-ring-4", "aurora", "Eva", "Gruber", "eva.gruber.win@outlook.com", "AT",
          date(1997, 5, 30), 23, "5ee1c0ffee5ee1c0", "77.119.200.45", kyc_level=0,
          affiliate="CASINOGURU"),
    Story("demo-story-vip", "aurora", "Daniel", "Camilleri", "daniel.camilleri@maltanet.net",
          "MT", date(1979, 9, 23), 1100, "9b2d7e4410c3fa66", "31.13.228.9", kyc_level=3,
          tags=("VIP", "High roller"), notes=("contact", "payment-query")),
    Story("demo-story-where-is-my-money", "aurora", "Liam", "O'Brien", "liam.obrien@eircom.net",
          "IE", date(1990, 4, 11), 320, "c0d3b4b3e1f2a9d7", "86.44.120.7", kyc_level=2,
          notes=("payment-query",)),
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Row building
# --------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Rows for every table, as tuples in the COPY column order."""

    players: list[tuple] = field(default_factory=list)
    history: list[tuple] = field(default_factory=list)
    logins: list[tuple] = field(default_factory=list)
    devices: dict[tuple[int, str], list] = field(default_factory=dict)
    tags: list[tuple] = field(default_factory=list)
    notes: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)


PLAYER_COLS = (
    "id", "brand_id", "external_ref", "username", "email", "phone", "first_name", "last_name",
    "date_of_birth", "country", "currency", "language", "registered_at", "registration_ip",
    "registration_device", "affiliate_code", "status", "status_reason", "block_deposits",
    "block_withdrawals", "block_play", "block_bonuses", "kyc_level", "last_activity_at",
)  # fmt: skip
HISTORY_COLS = tuple(c for c in PLAYER_COLS if c != "last_activity_at") + (
    "history_date", "history_change_reason", "history_type", "history_user_id",
)  # fmt: skip
LOGIN_COLS = ("player_id", "brand_id", "occurred_at", "ip", "device_id", "user_agent",
              "country", "succeeded")  # fmt: skip
DEVICE_COLS = ("player_id", "brand_id", "device_id", "user_agent", "first_seen_at",
               "last_seen_at", "last_ip", "login_count")  # fmt: skip
TAG_COLS = ("player_id", "tag_id", "brand_id", "added_by_id", "added_at")
NOTE_COLS = ("player_id", "brand_id", "category", "reason_id", "body", "author_id", "created_at")
EVENT_COLS = ("player_id", "brand_id", "occurred_at", "kind", "action", "summary",
              "object_type", "object_id", "actor_label", "visibility", "data")  # fmt: skip


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@functools.cache
def _slug(text: str) -> str:
    return "".join(ch for ch in _ascii(text) if ch.isalnum())


def _weighted(rng, pairs: Sequence[tuple[Any, float]]):
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


class NamePools:
    """Per-country pools of first and last names drawn once from a seeded Faker."""

    def __init__(self, seed: int):
        from faker import Faker

        self.first: dict[str, list[str]] = {}
        self.last: dict[str, list[str]] = {}
        for country, locale in LOCALES.items():
            fake = Faker(locale)
            fake.seed_instance(f"{seed}:{country}")
            if locale == "ja_JP":
                first = [fake.first_romanized_name() for _ in range(120)]
                last = [fake.last_romanized_name() for _ in range(160)]
            else:
                first = [fake.first_name() for _ in range(150)]
                last = [fake.last_name() for _ in range(250)]
            if country == "MT":
                last = list(MALTESE_SURNAMES)
            self.first[country] = sorted(set(first))
            self.last[country] = sorted(set(last))


class Builder:
    """Turns draws from one generator into the rows of every table."""

    def __init__(self, ctx, ids: list[int], reasons: dict[str, NoteReason], tags: dict[str, Tag]):
        self.ctx = ctx
        self.rng = ctx.rng_for("players")
        self.ids = iter(ids)
        self.reasons = reasons
        self.tags = tags
        self.staff = ctx.staff
        self.batch = Batch()
        self.names = NamePools(ctx.seed)
        self.brands = ctx.brands
        from backoffice.demo import BRAND_SPECS

        self.specs = BRAND_SPECS
        self.last_cluster: tuple[str, str, str] | None = None  # brand, device, ip

    # -- helpers -------------------------------------------------------------------------

    def _ip(self, country: str) -> str:
        lo, hi = IP_PREFIX[country]
        bits = self.rng.getrandbits(24)
        first = lo + bits % (hi - lo + 1)
        return f"{first}.{(bits >> 8) & 255}.{bits & 255}.{1 + (bits >> 16) % 254}"

    def _device(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def _when(self, start: datetime, end: datetime) -> datetime:
        span = max(int((end - start).total_seconds()), 1)
        return start + timedelta(seconds=int(self.rng.random() * span))

    def _event(self, pid, brand_id, at, kind, action, summary, actor="platform", visibility="",
               data=None, object_type="players.player", object_id=None):  # fmt: skip
        self.batch.events.append((
            pid, brand_id, at, kind, action, summary[:300], object_type,
            str(pid if object_id is None else object_id), actor, visibility,
            data if isinstance(data, str) else json.dumps(data or {}),
        ))  # fmt: skip

    def _history(self, row: tuple, at: datetime, reason: str, kind: str, user) -> None:
        values = dict(zip(PLAYER_COLS, row, strict=True))
        values.pop("last_activity_at")
        self.batch.history.append((*values.values(), at, reason, kind, getattr(user, "pk", None)))

    def _login(self, pid, brand_id, at, ip, device, agent, country, ok=True) -> None:
        self.batch.logins.append((pid, brand_id, at, ip, device, agent, country, ok))
        # Hand-made JSON: these values are IPs, hex ids and country codes (nothing to escape).
        data = f'{{"ip": "{ip}", "device_id": "{device}", "country": "{country}"}}'
        if not ok:
            self._event(pid, brand_id, at, "login", "login.failed", f"Failed login from {ip}",
                        object_type="", object_id="", data=data)  # fmt: skip
            return
        key = (pid, device)
        known = self.batch.devices.get(key)
        if known is None:
            self.batch.devices[key] = [pid, brand_id, device, agent, at, at, ip, 1]
            action, summary = "login.new_device", f"Login from a new device ({device[:12]}) at {ip}"
        else:
            known[4] = min(known[4], at)
            if at >= known[5]:
                known[5], known[6] = at, ip
            known[7] += 1
            action, summary = "login.succeeded", f"Login from {ip}"
        self._event(pid, brand_id, at, "login", action, summary, object_type="", object_id="",
                    data=data)  # fmt: skip

    # -- one player ----------------------------------------------------------------------

    def player(self, index: int, story: Story | None = None) -> None:
        rng, now = self.rng, self.ctx.now
        pid = next(self.ids)
        if story is None:
            code = _weighted(rng, list(BRAND_WEIGHTS.items()))
            spec = self.specs[code]
            country = rng.choice(spec.countries)
            first = rng.choice(self.names.first[country])
            last = rng.choice(self.names.last[country])
            dob = (now - timedelta(days=rng.randint(18 * 365 + 5, 75 * 365))).date()
            registered = now - timedelta(days=rng.randint(1, 1100), seconds=rng.randint(0, 86399))
            base = f"{_slug(first)}.{_slug(last)}"
            email = f"{base}{rng.randint(1, 999)}@{rng.choice(MAIL_DOMAINS[country])}"
            device, ip = self._device(), self._ip(country)
            status = _weighted(rng, STATUS_WEIGHTS)
            kyc = _weighted(rng, KYC_WEIGHTS)
            affiliate = rng.choice(AFFILIATES) if rng.random() < 0.35 else ""
            # Households: now and then a player shares the previous player's device and IP.
            if self.last_cluster and self.last_cluster[0] == code and rng.random() < 0.02:
                device, ip = self.last_cluster[1:]
            ref = f"{DEMO_PREFIX}{code}-{index:07d}"
        else:
            code, spec = story.brand, self.specs[story.brand]
            country, first, last, dob = story.country, story.first_name, story.last_name, story.dob
            registered = now - timedelta(days=story.registered_days_ago, hours=5)
            email, device, ip = story.email, story.device, story.ip
            status, kyc, affiliate, ref = story.status, story.kyc_level, story.affiliate, story.ref
        brand = self.brands[code]
        username = f"{_slug(first)[:10]}{_slug(last)[:8]}{pid}"
        phone = f"{DIAL[country]}{rng.randint(10**8, 10**9 - 1)}"
        agent = rng.choice(USER_AGENTS)
        if registered > now - timedelta(days=30) or rng.random() < 0.7:
            last_seen = self._when(max(registered, now - timedelta(days=30)), now)
        else:
            last_seen = self._when(registered, now - timedelta(days=30))
        if story is not None and status == Player.Status.ACTIVE:
            # Planted accounts sharing an IP last logged in minutes apart (the ring's tell-tale).
            last_seen = now - timedelta(days=2) + timedelta(minutes=7 * STORIES.index(story))
        reason, actor, changed_at = "", None, None
        if status != Player.Status.ACTIVE:
            if story is not None:
                reason, role = story.status_reason, roles.COMPLIANCE
                changed_at = now - timedelta(days=story.status_days_ago, hours=3)
            else:
                reason, role = rng.choice(STATUS_REASONS[status])
                changed_at = self._when(registered + timedelta(hours=1), now)
            actor = self.staff.get(role)
            last_seen = min(last_seen, changed_at)
        blocks = [False, False, False, False]  # deposits, withdrawals, play, bonuses
        if story is not None:
            blocks[3] = story.block_bonuses
        elif status == Player.Status.ACTIVE:
            roll = rng.random()
            if roll < 0.03:
                blocks[3] = True
            elif roll < 0.04:
                blocks[1] = True
            elif roll < 0.05:
                blocks[0] = True
        registered_row = (
            pid, brand.pk, ref, username, email, phone, first, last, dob, country, spec.currency,
            LANGUAGE[country], registered, ip, device, affiliate, Player.Status.ACTIVE, "",
            False, False, False, False, kyc, last_seen,
        )  # fmt: skip
        self._history(registered_row, registered, "Registered", "+", None)
        self._event(pid, brand.pk, registered, "account", "player.registered",
                    f"Registered on {brand.name} from {country}"
                    + (f" (affiliate {affiliate})" if affiliate else ""))  # fmt: skip
        # Logins: the registration, a few in between, the last activity.
        self._login(pid, brand.pk, registered, ip, device, agent, country)
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4))):
            at = self._when(registered, last_seen)
            if rng.random() < 0.2:
                self._login(pid, brand.pk, at, self._ip(country), self._device(),
                            rng.choice(USER_AGENTS), country)  # fmt: skip
            else:
                self._login(pid, brand.pk, at, ip if rng.random() < 0.6 else self._ip(country),
                            device, agent, country, ok=rng.random() > 0.05)  # fmt: skip
        if last_seen > registered:
            self._login(pid, brand.pk, last_seen, ip, device, agent, country)
        row = list(registered_row)
        if status != Player.Status.ACTIVE:
            row[16], row[17] = status, reason
            self._history(tuple(row), changed_at, reason, "~", actor)
            self._event(pid, brand.pk, changed_at, "account", "status.changed",
                        f"Status Active → {Player.Status(status).label}: {reason}",
                        actor=actor.username if actor else "system",
                        data={"from": "active", "to": status, "reason": reason})  # fmt: skip
        if any(blocks):
            row[18:22] = blocks
            at = self._when(registered + timedelta(hours=2), last_seen + timedelta(hours=1))
            risk = self.staff.get(roles.RISK)
            words = ", ".join(
                f"{name} blocked"
                for name, on in zip(("deposits", "withdrawals", "play", "bonuses"), blocks,
                                    strict=True)
                if on
            )  # fmt: skip
            self._history(tuple(row), at, "Risk review", "~", risk)
            self._event(pid, brand.pk, at, "account", "restrictions.changed",
                        f"Restrictions: {words}: Risk review",
                        actor=risk.username if risk else "system")  # fmt: skip
        self.batch.players.append(tuple(row))
        self.last_cluster = (code, device, ip)
        self._tags(pid, brand.pk, registered, story, blocks[3], affiliate)
        self._notes(pid, brand.pk, registered, last_seen, story, blocks[3])

    def _tags(self, pid, brand_id, registered, story, bonus_blocked, affiliate) -> None:
        rng = self.rng
        if story is not None:
            names = list(story.tags)
        else:
            names = []
            if bonus_blocked or rng.random() < 0.01:
                names.append("Bonus hunter")
            if rng.random() < 0.02:
                names.append("VIP")
            if rng.random() < 0.03:
                names.append("High roller")
            if affiliate and rng.random() < 0.5:
                names.append("Affiliate traffic")
            if rng.random() < 0.03:
                names.append("Sportsbook crossover")
            if rng.random() < 0.02:
                names.append("Newsletter opt-out")
        who = self.staff.get(roles.SUPPORT)
        for name in names:
            at = registered + timedelta(days=rng.randint(0, 20), hours=rng.randint(1, 20))
            at = min(at, self.ctx.now)
            self.batch.tags.append(
                (pid, self.tags[name].pk, brand_id, getattr(who, "pk", None), at)
            )
            self._event(pid, brand_id, at, "account", "tag.added", f"Tagged {name}",
                        actor=who.username if who else "system", data={"tag": name})  # fmt: skip

    def _notes(self, pid, brand_id, registered, last_seen, story, bonus_blocked) -> None:
        rng = self.rng
        general, risk = [], []
        if story is not None:
            general = list(story.notes)
            risk = [story.risk_note] if story.risk_note else []
        else:
            if rng.random() < 0.04:
                general.append(rng.choice(sorted(GENERAL_NOTES)))
            if bonus_blocked or rng.random() < 0.005:
                risk.append(rng.choice(RANDOM_RISK_NOTES))
        for code in general:
            self._note(pid, brand_id, code, GENERAL_NOTES[code], registered, last_seen,
                       self.staff.get(roles.SUPPORT))  # fmt: skip
        for code in risk:
            self._note(pid, brand_id, code, RISK_NOTES[code], registered, last_seen,
                       self.staff.get(roles.RISK))  # fmt: skip

    def _note(self, pid, brand_id, code, body, start, end, author) -> None:
        reason = self.reasons[code]
        at = self._when(start, max(end, start + timedelta(hours=1)))
        at = min(at, self.ctx.now)
        self.batch.notes.append(
            (pid, brand_id, reason.category, reason.pk, body, getattr(author, "pk", None), at)
        )
        is_risk = reason.category == NoteReason.Category.RISK
        self._event(
            pid, brand_id, at, "note", "risk_note.added" if is_risk else "note.added",
            f"{'Risk note' if is_risk else 'Note'} — {reason.label}: {body}",
            actor=author.username if author else "system",
            visibility="players.view_risk_notes" if is_risk else "players.view_playernote",
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


COPY_CHUNK = 20_000


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY rows in CSV: None is NULL (unquoted), every other value is quoted, so an empty
    string stays an empty string. The csv module does the escaping, in C."""
    count = 0
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_NOTNULL, lineterminator="\n")
        for row in rows:
            writer.writerow(row)
            count += 1
            if count % COPY_CHUNK == 0:
                copy.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
        copy.write(buffer.getvalue())
    return count


def _reserve_ids(model, n: int) -> list[int]:
    if n == 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, n],
        )
        return [row[0] for row in cursor.fetchall()]


def _ensure_tags() -> dict[str, Tag]:
    tags = {}
    for name, (colour, description) in TAGS.items():
        tag = Tag.objects.filter(name=name).first()
        if tag is None:
            tag = Tag(name=name, colour=colour, description=description)
            tag._change_reason = "Demo casino"
            tag.save()
        tags[name] = tag
    return tags


def seed(ctx) -> None:
    """Write the demo players (see the module docstring). Idempotent."""
    if ctx.players <= 0:
        ctx.log("  no players asked for")
        return
    if Player.objects.filter(external_ref__startswith=DEMO_PREFIX).exists():
        ctx.log("  demo players already there")
        return
    stories = STORIES[: ctx.players]
    random_count = ctx.players - len(stories)
    ids = _reserve_ids(Player, ctx.players)
    reasons = ensure_note_reasons()
    builder = Builder(ctx, ids, reasons, _ensure_tags())
    for index in range(random_count):
        builder.player(index)
    for story in stories:
        builder.player(0, story)
    b = builder.batch
    loads = [
        (Player._meta.db_table, PLAYER_COLS, b.players),
        (Player.history.model._meta.db_table, HISTORY_COLS, b.history),
        (PlayerLogin._meta.db_table, LOGIN_COLS, b.logins),
        (PlayerDevice._meta.db_table, DEVICE_COLS, b.devices.values()),
        (PlayerTag._meta.db_table, TAG_COLS, b.tags),
        (PlayerNote._meta.db_table, NOTE_COLS, b.notes),
        (TimelineEvent._meta.db_table, EVENT_COLS, b.events),
    ]
    with bulk_load([table for table, _, _ in loads]):
        for table, columns, rows in loads:
            _copy(table, columns, rows)
    with connection.cursor() as cursor:
        for model in (Player, PlayerLogin, PlayerDevice, PlayerTag, PlayerNote, TimelineEvent):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    ctx.log(
        f"  {len(b.players):,} players ({len(stories)} planted stories), {len(b.logins):,} "
        f"logins, {len(b.devices):,} devices, {len(b.tags):,} tags, {len(b.notes):,} notes, "
        f"{len(b.events):,} timeline events"
    )


def story_player(ref: str) -> Player | None:
    """A planted story's player (for the other apps' demo seeds), or None if not seeded."""
    return Player.objects.filter(external_ref=ref).select_related("brand").first()
