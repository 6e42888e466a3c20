"""Support tickets: a player's question or complaint, worked by a team through a status machine.

Tables:
- `Ticket`: one case, tied to a player and optionally to any other object (a payment, a bonus
  grant, a game round) by a generic (object_type, object_id) reference, so later apps plug in
  without a migration here.
- `TicketNote`: the conversation log on a ticket (internal notes, recorded replies, system
  lines), append-only.
- `Macro`: a saved reply/action an agent applies in one click (adds a note, sets status,
  priority or team).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice import roles
from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Status(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PENDING_PLAYER = "pending_player", "Pending player"
    PENDING_INTERNAL = "pending_internal", "Pending internal"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# How long a ticket of each priority may stay unresolved, counted from its creation.
SLA_BY_PRIORITY: dict[str, timedelta] = {
    Priority.URGENT: timedelta(hours=1),
    Priority.HIGH: timedelta(hours=4),
    Priority.NORMAL: timedelta(hours=24),
    Priority.LOW: timedelta(hours=72),
}

# Below this share of its SLA left, a ticket shows as ageing (amber) before it is overdue (red).
SLA_WARNING_SHARE = 0.25

# Statuses in which a ticket is still someone's work.
OPEN_STATUSES = frozenset({Status.NEW, Status.OPEN, Status.PENDING_PLAYER, Status.PENDING_INTERNAL})
# Statuses in which the SLA clock runs: waiting on the player does not make us late.
SLA_RUNNING_STATUSES = frozenset({Status.NEW, Status.OPEN, Status.PENDING_INTERNAL})

TEAM_CHOICES = [(role, role) for role in roles.ROLES if role not in (roles.ADMIN, roles.AUDITOR)]


class Ticket(models.Model):
    """A support case on one player, moved through `TRANSITIONS` by `support.services`.

    Guarantees kept by the services: every status change is allowed by `TRANSITIONS` and
    recorded (history row with actor and reason, player timeline event); resolving or closing
    needs a resolution code; a dispute cannot be resolved or closed without an outcome;
    `sla_due_at` always follows the priority; a ticket has at most one assignee, and claiming
    is race-safe (the row is locked).
    """

    Priority = Priority
    Status = Status

    class Category(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        BONUS = "bonus", "Bonus"
        GAME = "game", "Game"
        ACCOUNT = "account", "Account & login"
        VERIFICATION = "verification", "Verification (KYC)"
        RESPONSIBLE_GAMBLING = "responsible_gambling", "Responsible gambling"
        COMPLAINT = "complaint", "Complaint"
        TECHNICAL = "technical", "Technical"
        OTHER = "other", "Other"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        CHAT = "chat", "Live chat"
        PHONE = "phone", "Phone"
        INTERNAL = "internal", "Internal"

    class Resolution(models.TextChoices):
        ANSWERED = "answered", "Answered"
        FIXED = "fixed", "Fixed"
        REFUNDED = "refunded", "Refunded / credited"
        NO_ACTION = "no_action", "No action needed"
        DUPLICATE = "duplicate", "Duplicate"
        NO_RESPONSE = "no_response", "No response from player"
        ESCALATED = "escalated", "Escalated outside support"
        SPAM = "spam", "Spam"

    class DisputeOutcome(models.TextChoices):
        PENDING = "pending", "Pending decision"
        UPHELD = "upheld", "Upheld (player's favour)"
        PARTIALLY_UPHELD = "partially_upheld", "Partially upheld"
        REJECTED = "rejected", "Rejected"
        REFERRED_ADR = "referred_adr", "Referred to ADR"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.NEW: frozenset(
            {
                Status.OPEN,
                Status.PENDING_PLAYER,
                Status.PENDING_INTERNAL,
                Status.RESOLVED,
                Status.CLOSED,
            }
        ),
        Status.OPEN: frozenset(
            {Status.PENDING_PLAYER, Status.PENDING_INTERNAL, Status.RESOLVED, Status.CLOSED}
        ),
        Status.PENDING_PLAYER: frozenset(
            {Status.OPEN, Status.PENDING_INTERNAL, Status.RESOLVED, Status.CLOSED}
        ),
        Status.PENDING_INTERNAL: frozenset(
            {Status.OPEN, Status.PENDING_PLAYER, Status.RESOLVED, Status.CLOSED}
        ),
        Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
        Status.CLOSED: frozenset(),
    }

    # The composite indexes in Meta (ticket_brand, ticket_player, ticket_assignee_status) lead
    # with these columns, so the foreign keys need no index of their own.
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    player = models.ForeignKey(
        "players.Player", on_delete=models.PROTECT, related_name="tickets", db_index=False
    )
    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=24, choices=Category.choices, default=Category.OTHER)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    team = models.CharField(max_length=40, choices=TEAM_CHOICES, default=roles.SUPPORT)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_tickets",
        db_index=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    sla_due_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution_code = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    is_dispute = models.BooleanField(default=False)
    dispute_outcome = models.CharField(max_length=20, choices=DisputeOutcome.choices, blank=True)
    object_type = models.CharField(
        max_length=80, blank=True, help_text="app_label.model of the linked object, if any."
    )
    object_id = models.CharField(max_length=64, blank=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["-id"]
        permissions = [("decide_dispute", "Can record the outcome of a dispute")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status__in=["resolved", "closed"]) | ~Q(resolution_code=""),
                name="ticket_resolved_has_code",
                violation_error_message="A resolved or closed ticket needs a resolution code.",
            ),
            models.CheckConstraint(
                condition=Q(is_dispute=True) | Q(dispute_outcome=""),
                name="ticket_outcome_only_on_dispute",
                violation_error_message="Only a dispute has an outcome.",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "sla_due_at"], name="ticket_status_sla"),
            # Status and priority, the queue's triage filters, in the queue's order (SLA due),
            # brand last: the page is read in order with the brand scope checked in the index,
            # and the bounded count is an index-only scan.
            models.Index(
                fields=["status", "priority", "sla_due_at", "brand"], name="ticket_status_priority"
            ),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            models.Index(fields=["team", "status"], name="ticket_team_status"),
            models.Index(fields=["player", "-id"], name="ticket_player"),
            models.Index(fields=["brand", "-id"], name="ticket_brand"),
            models.Index(
                fields=["sla_due_at"],
                name="ticket_unassigned_open",
                condition=Q(
                    assignee__isnull=True,
                    status__in=["new", "open", "pending_player", "pending_internal"],
                ),
            ),
            models.Index(fields=["-id"], name="ticket_disputes", condition=Q(is_dispute=True)),
            models.Index(fields=["object_type", "object_id"], name="ticket_object"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def sla_state(self) -> str:
        """'breached', 'warning' or 'ok' (or '' when the clock is not running)."""
        if self.status not in SLA_RUNNING_STATUSES or self.sla_due_at is None:
            return ""
        now = timezone.now()
        if self.sla_due_at <= now:
            return "breached"
        total = SLA_BY_PRIORITY[self.priority].total_seconds()
        if (self.sla_due_at - now).total_seconds() <= total * SLA_WARNING_SHARE:
            return "warning"
        return "ok"

    def allowed_statuses(self) -> frozenset[str]:
        return self.TRANSITIONS.get(self.status, frozenset())


class TicketNote(models.Model):
    """One line of a ticket's log. Append-only: services add notes, nothing edits them.

    A `reply` records what was sent to the player through the player-facing channel; an
    `internal` note is for staff only; `system` lines are written by services.
    """

    class Kind(models.TextChoices):
        INTERNAL = "internal", "Internal note"
        REPLY = "reply", "Reply to player"
        SYSTEM = "system", "System"

    # ticketnote_ticket serves ticket lookups; brands are never deleted.
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="notes", db_index=False
    )
    brand = models.ForeignKey(
        "backoffice.Brand", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.INTERNAL)
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    macro = models.ForeignKey(
        "support.Macro", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    history = audit_history()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticketnote_ticket")]

    def __str__(self) -> str:
        return f"Note #{self.pk} on ticket {self.ticket_id}"


class Macro(models.Model):
    """A saved reply/action: applying it adds its note and sets what it names, in one step.

    Blank `set_*` fields leave that part of the ticket alone. A macro with a brand is offered
    only on that brand's tickets; without one, on every brand's.
    """

    name = models.CharField(max_length=80, unique=True)
    body = models.TextField(help_text="The note or reply text the macro adds.")
    note_kind = models.CharField(
        max_length=10,
        choices=[c for c in TicketNote.Kind.choices if c[0] != TicketNote.Kind.SYSTEM],
        default=TicketNote.Kind.REPLY,
    )
    set_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    set_resolution_code = models.CharField(
        max_length=16,
        choices=Ticket.Resolution.choices,
        blank=True,
        help_text="Needed when the macro resolves or closes tickets.",
    )
    set_priority = models.CharField(max_length=8, choices=Priority.choices, blank=True)
    set_team = models.CharField(max_length=40, choices=TEAM_CHOICES, blank=True)
    brand = models.ForeignKey(
        "backoffice.Brand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(default=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"
    brand_nullable = True

    history = audit_history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(set_status__in=["resolved", "closed"]) | ~Q(set_resolution_code=""),
                name="macro_resolution_needs_code",
                violation_error_message=(
                    "A macro that resolves or closes tickets needs a resolution code."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name
