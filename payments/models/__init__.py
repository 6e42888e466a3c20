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
from .reconciliation import (
    Discrepancy,
    ReconciliationException,
    SettlementReport,
)
from .risk import (
    ApproverLimit,
    AutoPayUsage,
    PayoutAttempt,
    RiskAssessment,
    RiskPath,
    RiskPolicy,
    WithdrawalReview,
)

__all__ = [
    "DEPOSIT_TRANSITIONS",
    "OPEN_WITHDRAWAL_STATUSES",
    "WITHDRAWAL_TRANSITIONS",
    "Account",
    "ApprovalThreshold",
    "ApproverLimit",
    "AutoPayUsage",
    "Currency",
    "Deposit",
    "Discrepancy",
    "LedgerEntry",
    "LedgerTransaction",
    "Payment",
    "PaymentKind",
    "PaymentMethod",
    "PaymentStatus",
    "PaymentTransition",
    "PayoutAttempt",
    "Psp",
    "PspInboxEvent",
    "PspWebhookRejection",
    "ReconciliationException",
    "RiskAssessment",
    "RiskPath",
    "RiskPolicy",
    "SettlementReport",
    "Withdrawal",
    "WithdrawalReview",
]
