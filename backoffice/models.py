"""The cross-cutting tables every app stands on: staff, brands, audit, approvals, saved filters."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from .history import audit_history
from .scoping import ScopedQuerySet


class User(AbstractUser):
    """A member of staff. Roles are Django groups; brand access is a guardian object permission.

    Players are not users: they live in `players.Player` and never log in here.
    """

    must_enrol_otp = models.BooleanField(
        default=True, help_text="Ask for second-factor enrolment at the next login."
    )
    must_change_password = models.BooleanField(
        default=False,
        help_text="Ask for a new password at the next sign-in (after a one-time one).",
    )
    deactivated_reason = models.CharField(max_length=200, blank=True)

    history = audit_history(excluded_fields=["password", "last_login"])

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username


class Brand(models.Model):
    """A casino brand (site). Players, payments, campaigns and tickets belong to one.

    Staff see a brand's data when they hold `backoffice.access_brand` on it (a guardian object
    permission, given to a user or to a role) or globally.
    """

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    jurisdiction = models.CharField(max_length=2, help_text="ISO country code of the licence.")
    default_currency = models.CharField(max_length=8)
    is_active = models.BooleanField(default=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = ""  # the brand is the object itself

    history = audit_history()

    class Meta:
        ordering = ["name"]
        permissions = [("access_brand", "Can work with this brand's data")]

    def __str__(self) -> str:
        return self.name


class AuditEvent(models.Model):
    """One explicit audit record: an action or a sensitive read, written by a service.

    Append-only (a database trigger rejects UPDATE and DELETE) and hash-chained: each row's
    `row_hash` covers its own content and the previous row's hash, so `verify_audit` finds any
    row altered or removed behind the application's back.
    """

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Username, 'system' or a PSP code.")
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.PROTECT)
    summary = models.CharField(max_length=300, blank=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64, unique=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"
    brand_nullable = True  # staff and role events belong to no brand

    class Meta:
        ordering = ["-id"]
        permissions = [("export_auditevent", "Can export the audit trail")]
        indexes = [
            models.Index(fields=["object_type", "object_id", "-id"]),
            models.Index(fields=["actor", "-id"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_label}"


class ApprovalRequest(models.Model):
    """A four-eyes request: one member of staff proposes an action, another decides.

    The action is a key in the approvals registry (`backoffice.approvals`); approving runs the
    registered executor in the same transaction. The requester can never approve their own.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"

    action = models.CharField(max_length=80, db_index=True)
    payload = models.JSONField(default=dict)
    summary = models.CharField(max_length=300)
    reason = models.TextField()
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.PROTECT)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"
    brand_nullable = True

    history = audit_history()

    class Meta:
        ordering = ["-requested_at"]
        permissions = [("decide_approvalrequest", "Can approve or reject four-eyes requests")]
        indexes = [models.Index(fields=["status", "-requested_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary}"


class SavedFilter(models.Model):
    """A list page's filter query string saved under a name by one member of staff."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters"
    )
    list_name = models.CharField(max_length=80, help_text="URL name of the list page.")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "list_name", "name"], name="uniq_saved_filter")
        ]

    def __str__(self) -> str:
        return self.name


class StaffSession(models.Model):
    """Which session belongs to which member of staff, so deactivation can end them at once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id}:{self.session_key[:6]}"
