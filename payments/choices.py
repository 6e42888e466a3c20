"""Reason codes staff pick from. Codes are stored; labels are shown."""

from django.db import models


class AdjustmentReason(models.TextChoices):
    GOODWILL = "goodwill", "Goodwill gesture"
    CORRECTION = "correction", "Correction of an error"
    GAME_MALFUNCTION = "game_malfunction", "Game malfunction compensation"
    PROMOTION = "promotion", "Promotion not applied"
    FRAUD_RECOVERY = "fraud_recovery", "Fraud recovery"
    OTHER = "other", "Other (explain in the note)"


class CorrectionReason(models.TextChoices):
    PLAYER_REQUEST = "player_request", "Player request"
    DUPLICATE = "duplicate", "Duplicate payment"
    FRAUD = "fraud", "Suspected fraud"
    PSP_ERROR = "psp_error", "PSP error"
    DISPUTE = "dispute", "Card dispute"
    OTHER = "other", "Other (explain in the note)"


class WithdrawalReason(models.TextChoices):
    NEW_PAYMENT_METHOD = "new_payment_method", "New payment method"
    KYC_INCOMPLETE = "kyc_incomplete", "KYC incomplete"
    WAGERING_OUTSTANDING = "wagering_outstanding", "Wagering outstanding"
    SUSPECTED_FRAUD = "suspected_fraud", "Suspected fraud"
    BONUS_ABUSE = "bonus_abuse", "Bonus abuse"
    AML_CHECK = "aml_check", "AML check"
    PLAYER_REQUEST = "player_request", "Player request"
    OTHER = "other", "Other (explain in the note)"


class BalanceKind(models.TextChoices):
    CASH = "cash", "Cash"
    BONUS = "bonus", "Bonus money"


class Direction(models.TextChoices):
    CREDIT = "credit", "Credit (add to the balance)"
    DEBIT = "debit", "Debit (take from the balance)"


class Correction(models.TextChoices):
    REFUND = "refund", "Refund"
    REVERSAL = "reversal", "Reversal"
    CHARGEBACK = "chargeback", "Chargeback"
