"""Players and the unified player timeline."""

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone

from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class Player(models.Model):
    """A player account on one brand. Players never log in to the back office.

    Status says whether the account may be used at all; the `block_*` restrictions switch off
    one kind of activity each and are enforced by the services that move money or bonuses.
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

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("change_player_status", "Can suspend, block, close or reactivate players"),
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
        ]

    def __str__(self) -> str:
        return f"{self.username} (#{self.pk})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class TimelineEvent(models.Model):
    """One entry of the unified player timeline, written by the service that did the thing.

    An event table (not a SQL view over every source table) because a view would have to
    UNION and sort tens of millions of rows from many tables per page, while this table is read
    by one index range scan on (player, occurred_at, id) whatever the player's history size.
    Services append with `players.timeline.record_event` in the same transaction as the change.
    `visibility` names the permission needed to see the entry ("" for anyone who may see the
    player), so risk notes and document contents stay hidden from support in the timeline too.
    """

    player = models.ForeignKey(Player, on_delete=models.PROTECT, related_name="timeline")
    brand = models.ForeignKey("backoffice.Brand", on_delete=models.PROTECT, related_name="+")
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
