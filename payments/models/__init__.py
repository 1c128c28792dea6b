"""The payments app's models: the books (payments, refunds, disputes, ledger, exports) and
reconciliation (what Telegram and A-Pay themselves recorded, and the differences)."""

from payments.models.books import (
    ChargeConflict,
    Dispute,
    ExportJob,
    LedgerEntry,
    Payment,
    Refund,
)
from payments.models.reconciliation import (
    Difference,
    StarBalanceSnapshot,
    StarTransaction,
    StatementImport,
    StatementRow,
)

__all__ = [
    "ChargeConflict",
    "Difference",
    "Dispute",
    "ExportJob",
    "LedgerEntry",
    "Payment",
    "Refund",
    "StarBalanceSnapshot",
    "StarTransaction",
    "StatementImport",
    "StatementRow",
]
