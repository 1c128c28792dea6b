"""What the providers themselves recorded, and where it differs from our books.

Telegram Stars: every StarTransaction of the bot (getStarTransactions), stored once, and
balance snapshots (getMyStarBalance). A-Pay: statement rows imported from its CSV (uploaded,
from the command line or fetched through its Reports API), stored once per transaction_id.
A Difference is one thing finance has to look at; it is found again, never twice, by every
later run, and closed by finance with a note (or by a run that no longer finds it).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core import money
from payments.models.books import Payment, Refund

NANOS = 1_000_000_000


class StarTransaction(models.Model):
    """One of the bot's Telegram Star transactions, as getStarTransactions reported it."""

    class Direction(models.TextChoices):
        IN = "in", "Incoming"
        OUT = "out", "Outgoing"

    class Kind(models.TextChoices):
        SALE = "sale", "Sale (a customer's payment)"
        REFUND = "refund", "Refund to a customer"
        CHARGEBACK = "chargeback", "Stars chargeback"
        WITHDRAWAL = "withdrawal", "Withdrawal (Fragment)"
        ADS = "ads", "Telegram Ads"
        API_FEE = "api_fee", "Paid broadcasts (Telegram API)"
        AFFILIATE = "affiliate", "Affiliate commission"
        USER_OTHER = "user_other", "Other user transaction (gift, Premium, paid media)"
        CHAT = "chat", "Chat (gifts)"
        OTHER = "other", "Other"

    SALES_KINDS = (Kind.SALE, Kind.REFUND)

    transaction_id = models.CharField(max_length=255)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    position = models.PositiveBigIntegerField(
        help_text="Its place in Telegram's chronological list (the offset it was read at)."
    )
    amount = models.BigIntegerField(help_text="Whole Stars, as Telegram reported them.")
    nanostar_amount = models.BigIntegerField(default=0)
    date = models.DateTimeField()
    partner_type = models.CharField(max_length=32, blank=True)
    transaction_type = models.CharField(max_length=32, blank=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    invoice_payload = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="star_transactions"
    )
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="star_transactions"
    )
    raw = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position"]
        verbose_name = "Stars transaction"
        constraints = [
            # A refund shares its payment's id: the direction tells them apart.
            models.UniqueConstraint(
                fields=["transaction_id", "direction"], name="payments_startx_once"
            ),
        ]
        indexes = [
            models.Index(fields=["date"], name="payments_startx_date"),
            models.Index(fields=["position"], name="payments_startx_position"),
        ]

    def __str__(self) -> str:
        sign = "+" if self.direction == self.Direction.IN else "−"
        return f"{sign}{self.amount} XTR, {self.get_kind_display().lower()} ({self.transaction_id})"

    @property
    def signed_nanos(self) -> int:
        """The movement of the bot's balance, in nanostars."""
        nanos = self.amount * NANOS + self.nanostar_amount
        return nanos if self.direction == self.Direction.IN else -nanos


class StarBalanceSnapshot(models.Model):
    """getMyStarBalance at one moment, beside what the stored transactions add up to then."""

    taken_at = models.DateTimeField(auto_now_add=True)
    amount = models.BigIntegerField()
    nanostar_amount = models.BigIntegerField(default=0)
    transactions_seen = models.PositiveBigIntegerField(
        help_text="Transactions stored when it was taken."
    )
    computed_nanos = models.BigIntegerField(
        help_text="The sum of the stored transactions, in nanostars."
    )

    class Meta:
        ordering = ["-taken_at", "-id"]

    def __str__(self) -> str:
        return f"{self.amount} XTR at {self.taken_at:%Y-%m-%d %H:%M}"

    @property
    def reported_nanos(self) -> int:
        return self.amount * NANOS + self.nanostar_amount

    @property
    def adds_up(self) -> bool:
        return self.reported_nanos == self.computed_nanos


class StatementImport(models.Model):
    """One provider statement taken in: who, from where, what it changed."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded in the back office"
        COMMAND = "command", "manage.py import_provider_statement"
        API = "api", "A-Pay Reports API"

    provider = models.CharField(max_length=8, choices=Payment.Provider.choices)
    source = models.CharField(max_length=8, choices=Source.choices)
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    rows_total = models.PositiveIntegerField(default=0)
    rows_new = models.PositiveIntegerField(default=0)
    rows_changed = models.PositiveIntegerField(default=0)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("import_statement", "Can import provider statements")]
        verbose_name = "statement import"

    def __str__(self) -> str:
        return f"{self.get_provider_display()} statement #{self.pk} ({self.rows_total} rows)"

    @property
    def rows_unchanged(self) -> int:
        return self.rows_total - self.rows_new - self.rows_changed


class StatementRow(models.Model):
    """One transaction on a provider's statement, kept once per transaction_id."""

    class Match(models.TextChoices):
        NONE = "", "Not matched"
        EXACT = "exact", "By the provider's id"
        WEAK = "weak", "By amount, currency and time (to confirm)"
        CONFIRMED = "confirmed", "By amount and time, confirmed by staff"

    SUCCESS = "Success"

    provider = models.CharField(max_length=8, choices=Payment.Provider.choices, default="apay")
    transaction_id = models.CharField(max_length=64)
    order_id = models.CharField(max_length=64, blank=True, db_index=True)
    custom_transaction_id = models.CharField(max_length=255, blank=True)
    custom_user_id = models.CharField(max_length=255, blank=True)
    amount = models.BigIntegerField(help_text="In minor units.")
    amount_after_commission = models.BigIntegerField(help_text="In minor units.")
    fee = models.BigIntegerField(default=0, help_text="amount − amount_after_commision.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="statement_rows"
    )
    match = models.CharField(max_length=10, choices=Match.choices, blank=True)
    fee_posted = models.BooleanField(default=False, help_text="Its fee is in the ledger.")
    statement = models.ForeignKey(
        StatementImport,
        on_delete=models.PROTECT,
        related_name="rows",
        help_text="The import that last changed it.",
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "A-Pay statement row"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "transaction_id"], name="payments_statementrow_once"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="payments_stmtrow_created"),
            models.Index(
                fields=["created_at"],
                condition=Q(payment__isnull=True),
                name="payments_stmtrow_open",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.transaction_id} {money.format_amount(self.amount, self.currency)} {self.status}"
        )


class Difference(models.Model):
    """Something the provider recorded that our books do not say, or the other way round."""

    class Kind(models.TextChoices):
        MISSING_HERE = "missing_here", "Paid at the provider, not recorded here"
        MISSING_THERE = "missing_there", "Recorded here, absent at the provider"
        AMOUNT = "amount", "Amounts differ"
        EXTERNAL_REFUND = "external_refund", "Refunded outside the back office"
        REFUND_NOT_MADE = "refund_not_made", "Our refund, not made at the provider"
        STATUS = "status", "Credited here, not Success at the provider"
        WEAK_MATCH = "weak_match", "Matched by amount and time only: confirm"
        CHARGEBACK = "chargeback", "Stars chargeback"
        BALANCE = "balance", "Balance does not add up"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    key = models.CharField(max_length=160, unique=True, help_text="What it is about, once.")
    provider = models.CharField(max_length=8, choices=Payment.Provider.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    occurred_at = models.DateTimeField(help_text="When the money moved (or was recorded).")
    currency = models.CharField(max_length=3)
    our_amount = models.BigIntegerField(null=True, blank=True, help_text="In minor units.")
    their_amount = models.BigIntegerField(null=True, blank=True, help_text="In minor units.")
    detail = models.TextField(blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="differences"
    )
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="differences"
    )
    star_transaction = models.ForeignKey(
        StarTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    statement_row = models.ForeignKey(
        StatementRow, null=True, blank=True, on_delete=models.PROTECT, related_name="differences"
    )
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = "reconciliation difference"
        indexes = [
            models.Index(
                fields=["provider", "occurred_at"],
                condition=Q(status="open"),
                name="payments_difference_open",
            ),
            models.Index(fields=["occurred_at"], name="payments_difference_when"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_provider_display()}, #{self.pk})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN
