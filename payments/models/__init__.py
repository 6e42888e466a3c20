"""The payments app's tables: the ledger, PSPs and their webhooks, deposits and withdrawals."""

from .ledger import Account, ApprovalThreshold, Currency, LedgerEntry, LedgerTransaction
from .payments import (
    DEPOSIT_TRANSITIONS,
    OPEN_WITHDRAWAL_STATUSES,
    WITHDRAWAL_TRANSITIONS,
    Deposit,
    Payment,
    PaymentKind,
    PaymentStatus,
    PaymentTransition,
    Withdrawal,
)
from .psp import PaymentMethod, Psp, PspInboxEvent, PspWebhookRejection

__all__ = [
    "DEPOSIT_TRANSITIONS",
    "OPEN_WITHDRAWAL_STATUSES",
    "WITHDRAWAL_TRANSITIONS",
    "Account",
    "ApprovalThreshold",
    "Currency",
    "Deposit",
    "LedgerEntry",
    "LedgerTransaction",
    "Payment",
    "PaymentKind",
    "PaymentMethod",
    "PaymentStatus",
    "PaymentTransition",
    "Psp",
    "PspInboxEvent",
    "PspWebhookRejection",
    "Withdrawal",
]
