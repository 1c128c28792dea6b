"""The money write paths, one module per sub-domain.

ledger: append-only entries posted once per idempotency key, purchase reversals;
recording: what Telegram reports as paid, matched to its order; crediting: exactly once,
one path for one payment and for a batch; refunds; disputes and chargebacks.
"""

from payments.services.crediting import (
    CREDIT_BATCH,
    payment_credit,
    payment_credit_batch,
    payment_credit_sweep,
    payments_uncredited,
)
from payments.services.differences import difference_resolve, differences_open_count
from payments.services.ledger import LedgerConflict, ledger_post, purchase_reversal_post
from payments.services.recording import Recurring, charge_conflict_resolve, payment_record
from payments.services.refunds import (
    refund_cancel,
    refund_complete,
    refund_confirm,
    refund_create,
    refund_fail,
    refund_record_external,
    refund_request,
    refund_retry,
)

__all__ = [
    "charge_conflict_resolve",
    "difference_resolve",
    "differences_open_count",
    "CREDIT_BATCH",
    "LedgerConflict",
    "ledger_post",
    "payment_credit",
    "payment_credit_batch",
    "payment_credit_sweep",
    "payments_uncredited",
    "payment_record",
    "Recurring",
    "purchase_reversal_post",
    "refund_cancel",
    "refund_complete",
    "refund_confirm",
    "refund_create",
    "refund_fail",
    "refund_record_external",
    "refund_request",
    "refund_retry",
]
