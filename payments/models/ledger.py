"""The double-entry ledger: currencies, accounts, transactions and their entries.

Every money movement is one `LedgerTransaction` whose `LedgerEntry` rows sum to zero per
currency. Entries and transactions are append-only (a database trigger rejects UPDATE and
DELETE) and are their own history; corrections are new transactions that point at what they
correct. `Account.balance` is a cache of the sum of the account's entries, written only by
`payments.services.ledger` in the same transaction as the entries.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from backoffice.history import audit_history
from backoffice.scoping import ScopedQuerySet


class Currency(models.Model):
    """A currency the casino books money in, fiat or crypto, with its minor-unit exponent.

    Amounts everywhere are integers in minor units: cents for EUR (exponent 2), yen for JPY (0),
    satoshis for BTC (8).
    """

    code = models.CharField(max_length=8, primary_key=True)
    name = models.CharField(max_length=60)
    exponent = models.PositiveSmallIntegerField(validators=[MaxValueValidator(18)])
    is_crypto = models.BooleanField(default=False)

    history = audit_history()

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "currencies"

    def __str__(self) -> str:
        return self.code


class Account(models.Model):
    """One balance in the ledger.

    A player has three wallet accounts per currency (withdrawable cash, bonus money, money
    locked by pending withdrawals); the house has accounts per brand, kind, currency and, for
    PSP clearing and game providers, per PSP or provider code (`ref`). Player balances can never
    go below zero (a check constraint backs the service's own check); house balances may.
    """

    class Kind(models.TextChoices):
        CASH = "cash", "Cash (withdrawable)"
        BONUS = "bonus", "Bonus money"
        LOCKED = "locked", "Locked by withdrawals"
        PSP_CLEARING = "psp_clearing", "PSP clearing"
        GAME_PROVIDER = "game_provider", "Game provider"
        BONUS_COST = "bonus_cost", "Bonus cost"
        FEES = "fees", "Fees"
        CHARGEBACK_LOSSES = "chargeback_losses", "Chargeback losses"
        ADJUSTMENTS = "adjustments", "Manual adjustments"

    PLAYER_KINDS = frozenset({Kind.CASH, Kind.BONUS, Kind.LOCKED})

    brand = models.ForeignKey("backoffice.Brand", on_delete=models.PROTECT, related_name="+")
    player = models.ForeignKey(
        "players.Player",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="wallet_accounts",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    ref = models.CharField(
        max_length=64, blank=True, help_text="PSP or game provider code, for house accounts."
    )
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    balance = models.BigIntegerField(
        default=0, help_text="Cached sum of the account's entries, in minor units."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    # The balance is left out: every change to it is a ledger entry already.
    history = audit_history(excluded_fields=["balance"])

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["player", "currency", "kind"],
                condition=models.Q(player__isnull=False),
                name="uniq_wallet_account",
            ),
            models.UniqueConstraint(
                fields=["brand", "kind", "ref", "currency"],
                condition=models.Q(player__isnull=True),
                name="uniq_house_account",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(player__isnull=False, kind__in=["cash", "bonus", "locked"])
                    | (
                        models.Q(player__isnull=True)
                        & ~models.Q(kind__in=["cash", "bonus", "locked"])
                    )
                ),
                name="account_kind_matches_owner",
            ),
            models.CheckConstraint(
                condition=models.Q(player__isnull=True) | models.Q(balance__gte=0),
                name="player_balance_not_negative",
            ),
        ]

    def __str__(self) -> str:
        if self.player_id:
            return f"Player #{self.player_id} {self.get_kind_display().lower()} {self.currency_id}"
        ref = f" {self.ref}" if self.ref else ""
        return f"{self.get_kind_display()}{ref} {self.currency_id}"

    @property
    def is_player_account(self) -> bool:
        return self.player_id is not None


class LedgerTransaction(models.Model):
    """One balanced movement of money: the header of a set of entries that sum to zero.

    `idempotency_key` is unique: posting the same key again returns this transaction, and the
    same key with different legs is refused (`fingerprint` is the hash of the legs). `reverses`
    points at the transaction a correction undoes (at most one reversal each).
    """

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL_LOCK = "withdrawal_lock", "Withdrawal requested (locked)"
        WITHDRAWAL_PAYOUT = "withdrawal_payout", "Withdrawal paid"
        WITHDRAWAL_RELEASE = "withdrawal_release", "Withdrawal returned to cash"
        REFUND = "refund", "Refund"
        REVERSAL = "reversal", "Reversal"
        CHARGEBACK = "chargeback", "Chargeback"
        ADJUSTMENT = "adjustment", "Manual adjustment"
        BET = "bet", "Bet"
        WIN = "win", "Win"
        ROLLBACK = "rollback", "Game rollback"
        BONUS_GRANT = "bonus_grant", "Bonus granted"
        BONUS_CONVERSION = "bonus_conversion", "Bonus converted to cash"
        BONUS_FORFEIT = "bonus_forfeit", "Bonus forfeited"
        TRANSFER = "transfer", "Transfer"

    # Unique through Meta.constraints rather than unique=True, which would add a second,
    # LIKE-pattern index that no lookup uses, written on every posting.
    idempotency_key = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the kind and the legs.")
    # The posting function refuses a transaction whose brand or player differs from its
    # accounts' (whose own foreign keys guard them), so the database does not check these again.
    brand = models.ForeignKey(
        "backoffice.Brand",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    player = models.ForeignKey(
        "players.Player",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=300, blank=True)
    reason_code = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approval = models.ForeignKey(
        "backoffice.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    class Meta:
        ordering = ["-id"]
        verbose_name = "ledger transaction"
        permissions = [
            ("request_adjustment", "Can request manual adjustments"),
            (
                "approve_adjustment",
                "Can approve adjustments, refunds, reversals and chargebacks above the threshold",
            ),
        ]
        indexes = [
            models.Index(
                fields=["player", "-id"],
                condition=models.Q(player__isnull=False),
                name="ledgertxn_player_idx",
            ),
            models.Index(fields=["object_type", "object_id"], name="ledgertxn_object_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="uniq_ledger_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}"


class LedgerEntry(models.Model):
    """One signed amount on one account; the rows of a transaction sum to zero per currency.

    `balance_after` is the account's balance right after this entry, so an account statement
    reads without summing and `check_ledger` can find the first entry altered in a chain.
    `brand`, `player` and `created_at` are copies from the account and transaction, so lists of
    millions of entries filter and scope on one table.
    """

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    # Low-cardinality copies: scoping filters on them, an index would not help. They are copied
    # from the account row by the posting function (payments_ledger_post) while it holds the
    # account's lock, and the account's own foreign keys guard them, so the database does not
    # check them again: three foreign-key checks fewer per entry, on the hottest insert path.
    brand = models.ForeignKey(
        "backoffice.Brand",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    player = models.ForeignKey(
        "players.Player",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    currency = models.ForeignKey(
        Currency, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    amount = models.BigIntegerField(help_text="Signed, in minor units.")
    balance_after = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    brand_path = "brand"

    class Meta:
        ordering = ["-id"]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="entry_amount_not_zero")
        ]
        indexes = [
            models.Index(fields=["account", "id"], name="ledgerentry_account_idx"),
            models.Index(
                fields=["player", "-id"],
                condition=models.Q(player__isnull=False),
                name="ledgerentry_player_idx",
            ),
            BrinIndex(fields=["created_at"], name="ledgerentry_created_brin"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.amount:+d} {self.currency_id} on account {self.account_id}"


class ApprovalThreshold(models.Model):
    """Per currency: adjustments, refunds, reversals and chargebacks above `amount` need a
    second approver. A currency without a row needs one for every amount (the safe default).
    """

    currency = models.OneToOneField(
        Currency, primary_key=True, on_delete=models.PROTECT, related_name="approval_threshold"
    )
    amount = models.BigIntegerField(
        help_text="In minor units. Amounts strictly above it go through four-eyes approval."
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = audit_history()

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="approval_threshold_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.currency_id} > {self.amount}"
