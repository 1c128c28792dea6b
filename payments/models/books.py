from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core import money
from shop.models import Customer, Order, PaymentMode


class Payment(models.Model):
    """Money Telegram told us was paid: one row per telegram_payment_charge_id."""

    class Provider(models.TextChoices):
        APAY = "apay", "A-Pay (Paykassma)"
        STARS = "stars", "Telegram Stars"

    class Review(models.TextChoices):
        NONE = "", "—"
        AMOUNT_MISMATCH = "amount_mismatch", "Amount or currency differs from the order"
        OVERPAYMENT = "overpayment", "Second payment for an order already paid"
        UNMATCHED = "unmatched", "Payload does not match any order"
        ORDER_CLOSED = "order_closed", "Order was cancelled or expired before payment"
        UNKNOWN_CURRENCY = "unknown_currency", "Currency not in Telegram's table"

    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    telegram_payment_charge_id = models.CharField(max_length=255, unique=True)
    provider_payment_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    provider = models.CharField(max_length=8, choices=Provider.choices)
    mode = models.CharField(
        max_length=8, choices=PaymentMode.choices, default=PaymentMode.LIVE,
        help_text="Test payments are credited in the bot but never count as money.",
    )  # fmt: skip
    amount = models.PositiveBigIntegerField(help_text="In minor units.")
    currency = models.CharField(max_length=3)
    # Kept up to date by the refund services; the check constraint below is what makes
    # "never refund more than was paid" hold even against a bug or a race in code.
    refunded_amount = models.PositiveBigIntegerField(default=0)
    review_reason = models.CharField(max_length=32, choices=Review.choices, blank=True)
    promo_code = models.CharField(
        max_length=32, blank=True, help_text="The order's promo code when it was paid."
    )
    discount_amount = models.PositiveBigIntegerField(
        default=0, help_text="The code's discount, in minor units: the amount is net of it."
    )
    is_recurring = models.BooleanField(
        default=False, help_text="A Stars subscription's renewal (Telegram charged it itself)."
    )
    paid_at = models.DateTimeField()
    credited_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-paid_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="payments_payment_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("amount")),
                name="payments_payment_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["paid_at", "id"], name="payments_payment_paid_at"),
            models.Index(
                fields=["review_reason"],
                condition=~Q(review_reason=""),
                name="payments_payment_review",
            ),
            # The credit sweep and the dashboard's "not credited" tile.
            models.Index(
                fields=["paid_at"],
                condition=Q(credited_at__isnull=True),
                name="payments_payment_uncredited",
            ),
            # The dashboard's money per currency, read from the index alone.
            models.Index(
                fields=["paid_at"],
                include=["currency", "amount"],
                condition=Q(review_reason=""),
                name="payments_payment_money",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{money.format_amount(self.amount, self.currency)} ({self.telegram_payment_charge_id})"
        )

    @property
    def is_test(self) -> bool:
        return self.mode == PaymentMode.TEST

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.refunded_amount

    @property
    def needs_review(self) -> bool:
        return bool(self.review_reason)


class ChargeConflict(models.Model):
    """A successful_payment whose charge id was already recorded, with other figures.

    Telegram's charge id is unique per payment, so this is never a redelivery: it is kept,
    held for staff to look at and counted on the dashboard, and nothing is credited for it.
    """

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="conflicts", help_text="Recorded first."
    )
    telegram_payment_charge_id = models.CharField(max_length=255)
    amount = models.BigIntegerField(help_text="As reported, in minor units.")
    currency = models.CharField(max_length=8)
    invoice_payload = models.CharField(max_length=255, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["telegram_payment_charge_id", "amount", "currency", "invoice_payload"],
                name="payments_chargeconflict_once",
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(resolved_at__isnull=True),
                name="payments_conflict_open",
            ),
        ]

    def __str__(self) -> str:
        return f"Charge {self.telegram_payment_charge_id} reported again with other figures"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Reason(models.TextChoices):
        CUSTOMER_REQUEST = "customer_request", "Customer request"
        NOT_DELIVERED = "not_delivered", "Not delivered"
        DEFECTIVE = "defective", "Defective or not as described"
        DUPLICATE = "duplicate", "Duplicate payment"
        FRAUD = "fraud", "Suspected fraud"
        OTHER = "other", "Other"

    class Source(models.TextChoices):
        STAFF = "staff", "Back office"
        TELEGRAM = "telegram", "Made outside the back office (Telegram)"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    amount = models.PositiveBigIntegerField(help_text="In minor units.")
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=24, choices=Reason.choices)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.STAFF)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    external_reference = models.CharField(
        max_length=255, blank=True, help_text="The provider's reference for this refund."
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    restock = models.BooleanField(
        default=False, help_text="Give the order's units back to stock when the refund completes."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="payments_refund_amount_positive"
            ),
            # Telegram reports an outside refund once per payment; record it once.
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(source="telegram"),
                name="payments_refund_one_telegram_per_payment",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="payments_refund_status")]

    def __str__(self) -> str:
        return f"Refund #{self.pk} {money.format_amount(self.amount, self.currency)}"

    @property
    def is_final(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.CANCELLED)


class Dispute(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        UNDER_REVIEW = "under_review", "Under review (evidence submitted)"
        WON = "won", "Won"
        LOST = "lost", "Lost"
        ACCEPTED = "accepted", "Accepted"

    class Reason(models.TextChoices):
        FRAUDULENT = "fraudulent", "Fraudulent / not authorised"
        NOT_RECEIVED = "not_received", "Product not received"
        NOT_AS_DESCRIBED = "not_as_described", "Not as described"
        DUPLICATE = "duplicate", "Duplicate charge"
        CREDIT_NOT_PROCESSED = "credit_not_processed", "Refund not processed"
        OTHER = "other", "Other"

    OPEN_STATUSES = (Status.OPEN, Status.UNDER_REVIEW)

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes"
    )
    reason = models.CharField(max_length=24, choices=Reason.choices)
    amount = models.PositiveBigIntegerField(help_text="In minor units.")
    fee = models.PositiveBigIntegerField(default=0, help_text="Chargeback fee, in minor units.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    provider_reference = models.CharField(max_length=255, blank=True)
    opened_at = models.DateTimeField()
    evidence_due_by = models.DateTimeField(db_index=True)
    evidence_submitted_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notes = models.TextField(blank=True)
    is_due_soon = models.BooleanField(default=False)
    is_overdue = models.BooleanField(default=False)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["evidence_due_by", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="payments_dispute_amount_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "evidence_due_by"], name="payments_dispute_queue")
        ]

    def __str__(self) -> str:
        return f"Dispute #{self.pk} on {self.payment.telegram_payment_charge_id}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class LedgerEntry(models.Model):
    """Append-only money movements per customer. Corrections are new, reversing entries.

    Signs are from the customer's balance: a credit is positive, a refund or chargeback is
    negative. A customer's balance in a currency is the sum of their entries in it (fees
    aside). Provider items (a Stars withdrawal, Telegram Ads, an affiliate commission) are the
    merchant's own money at the provider and have no customer: signed as the provider's
    balance moved.
    """

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit (payment received)"
        PURCHASE = "purchase", "Purchase (goods delivered)"
        REFUND = "refund", "Refund"
        CHARGEBACK = "chargeback", "Chargeback"
        FEE = "fee", "Fee"
        ADJUSTMENT = "adjustment", "Adjustment"
        PROVIDER = "provider", "Provider item (withdrawal, ads, commission)"
        DISCOUNT = "discount", "Discount (promo code)"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="Signed, in minor units.")
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=128, unique=True)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    dispute = models.ForeignKey(
        Dispute, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    memo = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="payments_ledgerentry_amount_nonzero"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "currency"], name="payments_ledger_balance"),
            models.Index(fields=["created_at", "id"], name="payments_ledger_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {money.format_amount(self.amount, self.currency)}"


class ExportJob(models.Model):
    """A finance export run by the worker: the admin shows its progress, then its file."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (file removed)"

    report = models.CharField(max_length=16)
    params = models.JSONField(default=dict, help_text="since, until, tz, currency, status, …")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    row_count = models.PositiveBigIntegerField(default=0)
    total_estimate = models.PositiveBigIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("export_reports", "Can export finance reports")]
        verbose_name = "finance report"
        verbose_name_plural = "finance reports"

    def __str__(self) -> str:
        return f"Export #{self.pk} {self.report}"

    @property
    def progress(self) -> int:
        """Percent done (estimated while running)."""
        if self.status == self.Status.DONE:
            return 100
        if not self.total_estimate:
            return 0
        return min(99, int(self.row_count * 100 / self.total_estimate))
