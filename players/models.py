"""Players and the unified player timeline.

Tables:
- `Player`: the account on one brand, with its status machine and restrictions.
- `Tag` / `PlayerTag`: labels staff put on players (VIP, affiliate, bonus hunter, …).
- `NoteReason` / `PlayerNote`: internal notes with templated reason codes; risk notes are the
  notes whose reason is in the risk category and need `players.view_risk_notes`.
- `PlayerLogin`, `PlayerDevice`, `PlayerInstrument`: where and with what the player connects
  and pays; the raw material of linked-account detection (`players.selectors.linked_accounts`).
- `TimelineEvent`: the unified player timeline, one row per thing that happened.
"""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class Player(models.Model):
    """A player account on one brand. Players never log in to the back office.

    Status says whether the account may be used at all; the `block_*` restrictions switch off
    one kind of activity each and are enforced by the services that move money or bonuses
    (through `players.services.assert_may_*`). Status changes go through
    `players.services.do_change_player_status`, which checks `STATUS_TRANSITIONS`.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        BLOCKED = "blocked", "Blocked"
        CLOSED = "closed", "Closed"
        SELF_EXCLUDED = "self_excluded", "Self-excluded"

    brand = models.ForeignKey("backoffice.Brand", on_delete=models.PROTECT, related_name="players")
    external_ref = models.CharField(
        max_length=64, help_text="The platform's id for this player (unique per brand)."
    )
    username = models.CharField(max_length=150)
    email = models.EmailField()
    phone = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField(null=True, blank=True)
    country = models.CharField(max_length=2)
    currency = models.CharField(max_length=8)
    language = models.CharField(max_length=8, default="en")
    registered_at = models.DateTimeField(default=timezone.now)
    registration_ip = models.GenericIPAddressField(null=True, blank=True)
    registration_device = models.CharField(max_length=64, blank=True)
    affiliate_code = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    status_reason = models.CharField(max_length=300, blank=True)
    block_deposits = models.BooleanField(default=False)
    block_withdrawals = models.BooleanField(default=False)
    block_play = models.BooleanField(default=False)
    block_bonuses = models.BooleanField(default=False)
    kyc_level = models.PositiveSmallIntegerField(
        default=0, help_text="0 none, 1 basic identity, 2 address verified, 3 source of funds."
    )
    last_activity_at = models.DateTimeField(null=True, blank=True)
    tags = models.ManyToManyField(
        "players.Tag", through="players.PlayerTag", related_name="players", blank=True
    )

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    # last_activity_at moves on every login or bet: it is not a change anyone needs to audit,
    # and keeping it out stops the history table growing with the activity tables.
    history = audit_history(excluded_fields=["last_activity_at"])

    # Which statuses a status may move to. Self-exclusion is lifted (back to active) only by
    # the responsible-gambling process that owns it; closing stays reversible by reopening.
    STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
        Status.ACTIVE: frozenset(
            {Status.SUSPENDED, Status.BLOCKED, Status.CLOSED, Status.SELF_EXCLUDED}
        ),
        Status.SUSPENDED: frozenset(
            {Status.ACTIVE, Status.BLOCKED, Status.CLOSED, Status.SELF_EXCLUDED}
        ),
        Status.BLOCKED: frozenset({Status.ACTIVE, Status.CLOSED}),
        Status.CLOSED: frozenset({Status.ACTIVE}),
        Status.SELF_EXCLUDED: frozenset({Status.ACTIVE, Status.CLOSED}),
    }

    RESTRICTIONS: dict[str, str] = {
        "block_deposits": "Deposits blocked",
        "block_withdrawals": "Withdrawals blocked",
        "block_play": "Play blocked",
        "block_bonuses": "Bonuses blocked",
    }

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("change_player_status", "Can suspend players and lift a suspension"),
            ("block_player", "Can block and unblock players"),
            ("close_player", "Can close and reopen player accounts"),
            ("self_exclude_player", "Can apply and lift self-exclusion"),
            ("change_player_restrictions", "Can switch player restrictions on and off"),
            ("view_risk_notes", "Can see risk notes"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["brand", "external_ref"], name="uniq_player_ref"),
            models.UniqueConstraint(fields=["brand", "username"], name="uniq_player_username"),
        ]
        indexes = [
            models.Index(fields=["brand", "-id"]),
            models.Index(fields=["email"]),
            models.Index(fields=["phone"]),
            models.Index(fields=["username"]),
            GinIndex(
                name="player_name_trgm",
                fields=["last_name"],
                opclasses=["gin_trgm_ops"],
            ),
            # Search matches email and username whatever their case (`__iexact` compiles to
            # UPPER(col) = UPPER(%s), which these expression indexes serve).
            models.Index(Upper("email"), name="player_email_upper"),
            models.Index(Upper("username"), name="player_username_upper"),
            models.Index(fields=["external_ref"], name="player_external_ref"),
            models.Index(fields=["registered_at"], name="player_registered"),
            models.Index(fields=["last_activity_at"], name="player_last_activity"),
            # The list's segment filters (country, then status, then KYC level) in the list's
            # order (-id, read backwards), brand last: a page is read in order with the brand
            # scope checked in the index, and the bounded count is an index-only scan.
            models.Index(
                fields=["country", "status", "kyc_level", "id", "brand"], name="player_segment"
            ),
            # Same person on another brand: date of birth is selective, the name narrows it.
            models.Index(fields=["date_of_birth", "last_name"], name="player_dob_name"),
            # The few restricted players, for the list's restriction filter (any or one).
            models.Index(
                fields=["-id"],
                name="player_restricted",
                condition=models.Q(block_deposits=True)
                | models.Q(block_withdrawals=True)
                | models.Q(block_play=True)
                | models.Q(block_bonuses=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.username} (#{self.pk})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def active_restrictions(self) -> list[str]:
        return [label for field, label in self.RESTRICTIONS.items() if getattr(self, field)]

    def allowed_statuses(self) -> frozenset[str]:
        return self.STATUS_TRANSITIONS.get(self.status, frozenset())


class Tag(models.Model):
    """A label staff put on players, shared by every brand (VIP, affiliate, bonus hunter…).

    Tags are the segments of the back office: the player list filters by them and bonus
    eligibility can name them.
    """

    class Colour(models.TextChoices):
        GREY = "secondary", "Grey"
        BLUE = "primary", "Blue"
        GREEN = "success", "Green"
        AMBER = "warning", "Amber"
        RED = "danger", "Red"
        TEAL = "info", "Teal"

    name = models.CharField(max_length=50, unique=True)
    description = models.CharField(max_length=200, blank=True)
    colour = models.CharField(max_length=16, choices=Colour.choices, default=Colour.GREY)

    objects = ScopedQuerySet.as_manager()
    brand_path = None  # one vocabulary for every brand

    history = audit_history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PlayerTag(models.Model):
    """One tag on one player: who put it there and when (the M2M's explicit through table)."""

    # The unique (player, tag) index serves player lookups; brands are never deleted.
    player = models.ForeignKey(
        Player, on_delete=models.CASCADE, related_name="player_tags", db_index=False
    )
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="player_tags")
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["tag__name"]
        constraints = [
            models.UniqueConstraint(fields=["player", "tag"], name="uniq_player_tag"),
        ]
        indexes = [models.Index(fields=["tag", "player"], name="playertag_tag_player")]

    def __str__(self) -> str:
        return f"{self.player_id}:{self.tag_id}"


class NoteReason(models.Model):
    """A reason code for player notes, with the text a new note of that reason starts from.

    `category` decides who may read the note: general notes go to anyone who sees player
    notes, risk notes only to holders of `players.view_risk_notes` (Risk and Compliance).
    """

    class Category(models.TextChoices):
        GENERAL = "general", "General"
        RISK = "risk", "Risk"

    code = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=100)
    category = models.CharField(
        max_length=10, choices=Category.choices, default=Category.GENERAL, db_index=True
    )
    template = models.TextField(
        blank=True, help_text="Starting text of a note with this reason; staff complete it."
    )
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=100)

    objects = ScopedQuerySet.as_manager()
    brand_path = None

    history = audit_history()

    class Meta:
        ordering = ["category", "order", "label"]

    def __str__(self) -> str:
        return self.label


class PlayerNote(models.Model):
    """An internal note about a player, written by staff; never edited, never shown to players.

    `category` is copied from the reason when the note is written, so the read filter is one
    column on this table (and a later change of the reason's category does not expose old
    risk notes).
    """

    # note_player_idx serves player lookups; brands are never deleted.
    player = models.ForeignKey(
        Player, on_delete=models.PROTECT, related_name="notes", db_index=False
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    category = models.CharField(max_length=10, choices=NoteReason.Category.choices)
    reason = models.ForeignKey(NoteReason, on_delete=models.PROTECT, related_name="notes")
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["player", "category", "-created_at", "-id"], name="note_player_idx"
            )
        ]

    def __str__(self) -> str:
        return f"Note #{self.pk} on player {self.player_id}"


class PlayerLogin(models.Model):
    """One login (or failed attempt) reported by the platform. Append-only: its own history.

    Linked-account detection looks for other players' logins from the same IP within a short
    window, through the (ip, occurred_at) index.
    """

    # login_player_idx serves player lookups; brands are never deleted. Fewer indexes on a
    # table that grows with every login.
    player = models.ForeignKey(
        Player, on_delete=models.CASCADE, related_name="logins", db_index=False
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField()
    device_id = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="Geolocated from the IP.")
    succeeded = models.BooleanField(default=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["player", "-occurred_at"], name="login_player_idx"),
            models.Index(fields=["ip", "occurred_at"], name="login_ip_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} from {self.ip} at {self.occurred_at:%Y-%m-%d %H:%M}"


class PlayerDevice(models.Model):
    """A device (platform fingerprint) a player has used: first and last seen, how often.

    A roll-up of `PlayerLogin` kept by `players.services.do_record_login`; it is not
    historised because the login rows it summarises are the record. Indexed by device id, so
    "who else uses this device" is one index probe per device.
    """

    # The unique (player, device_id) index serves player lookups; brands are never deleted.
    player = models.ForeignKey(
        Player, on_delete=models.CASCADE, related_name="devices", db_index=False
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    device_id = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=200, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    login_count = models.PositiveIntegerField(default=0)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["player", "device_id"], name="uniq_player_device"),
        ]
        indexes = [models.Index(fields=["device_id"], name="device_id_idx")]

    def __str__(self) -> str:
        return f"{self.device_id} ({self.player_id})"


class PlayerInstrument(models.Model):
    """A payment instrument a player has used, known by the PSP's fingerprint.

    Owned by the players app so linked-account detection does not depend on payments; the
    payments services report instruments with `players.services.do_record_instrument`. The
    fingerprint identifies the card, wallet or account, never its number (`label` is masked).
    """

    class Kind(models.TextChoices):
        CARD = "card", "Card"
        BANK_ACCOUNT = "bank_account", "Bank account"
        EWALLET = "ewallet", "E-wallet"
        CRYPTO_WALLET = "crypto_wallet", "Crypto wallet"

    # The unique (player, fingerprint) index serves player lookups; brands are never deleted.
    player = models.ForeignKey(
        Player, on_delete=models.PROTECT, related_name="instruments", db_index=False
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    fingerprint = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=100, help_text="Masked, e.g. Visa •••• 4242.")
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history(excluded_fields=["last_seen_at"])

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["player", "fingerprint"], name="uniq_player_instrument"
            ),
        ]
        indexes = [models.Index(fields=["fingerprint"], name="instrument_fp_idx")]

    def __str__(self) -> str:
        return self.label


class TimelineEvent(models.Model):
    """One entry of the unified player timeline, written by the service that did the thing.

    An event table (not a SQL view over every source table) because a view would have to
    UNION and sort tens of millions of rows from many tables per page, while this table is read
    by one index range scan on (player, occurred_at, id) whatever the player's history size.
    Services append with `players.timeline.record` in the same transaction as the change.
    `visibility` names the permission needed to see the entry ("" for anyone who may see the
    player), so risk notes and document contents stay hidden from support in the timeline too.
    Append-only: the table is its own history.
    """

    # timeline_player_idx serves player lookups; brands are never deleted. The table grows
    # with everything every player does, so it carries only the indexes its reads use.
    player = models.ForeignKey(
        Player, on_delete=models.PROTECT, related_name="timeline", db_index=False
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40, help_text="payment, ledger, game, bonus, kyc, …")
    action = models.CharField(max_length=60, help_text="Dotted verb, e.g. deposit.credited.")
    summary = models.CharField(max_length=300)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    visibility = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["player", "-occurred_at", "-id"], name="timeline_player_idx"),
            models.Index(
                fields=["player", "kind", "-occurred_at", "-id"], name="timeline_player_kind_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.action}"
