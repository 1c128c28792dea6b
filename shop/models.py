from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinLengthValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from core import money

# Telegram's rules for Stars subscriptions (Bot API, createInvoiceLink).
SUBSCRIPTION_PERIOD_SECONDS = 2592000  # 30 days: the only period Telegram accepts
SUBSCRIPTION_MAX_STARS = 10000


class Product(models.Model):
    class Kind(models.TextChoices):
        TOPUP = "topup", "Top-up (credits the balance)"
        DIGITAL = "digital", "Digital item"
        PHYSICAL = "physical", "Physical goods"
        SUBSCRIPTION = "subscription", "Stars subscription (30 days)"

    sku = models.SlugField("SKU", max_length=32, unique=True)
    # Telegram's invoice limits: title 1-32 characters, description 1-255.
    title = models.CharField("title (English)", max_length=32, validators=[MinLengthValidator(1)])
    description = models.CharField(
        "description (English)", max_length=255, validators=[MinLengthValidator(1)]
    )
    title_ru = models.CharField(
        "title (Russian)", max_length=32, blank=True, help_text="Empty: the English title."
    )
    description_ru = models.CharField(
        "description (Russian)",
        max_length=255,
        blank=True,
        help_text="Empty: the English description.",
    )
    option_name = models.CharField(
        "option asked (English)",
        max_length=32,
        blank=True,
        help_text="E.g. Size. The bot asks it before the invoice when the product has options.",
    )
    option_name_ru = models.CharField("option asked (Russian)", max_length=32, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    price = models.PositiveBigIntegerField(help_text="In minor units of the currency (cents).")
    currency = models.CharField(max_length=3, choices=money.currency_choices)
    photo_url = models.URLField(blank=True)
    stock = models.PositiveIntegerField(
        null=True, blank=True, help_text="Units left to sell; empty means unlimited."
    )
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="shop_product_price_positive"),
            models.CheckConstraint(
                condition=~Q(kind="physical", currency="XTR"),
                name="shop_product_no_physical_stars",
            ),
            models.CheckConstraint(
                condition=~Q(kind="subscription") | Q(currency="XTR", price__lte=10000),
                name="shop_product_subscription_stars",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.sku})"

    def title_in(self, language: str) -> str:
        return (self.title_ru if language == "ru" else "") or self.title

    def description_in(self, language: str) -> str:
        return (self.description_ru if language == "ru" else "") or self.description

    def option_name_in(self, language: str) -> str:
        return (self.option_name_ru if language == "ru" else "") or self.option_name

    def clean(self) -> None:
        errors = {}
        if self.currency and not money.is_known_currency(self.currency):
            errors["currency"] = f"Telegram does not accept the currency {self.currency}."
        elif self.currency and self.price:
            limits = money.amount_limits(self.currency)
            if limits and not limits[0] <= self.price <= limits[1]:
                low, high = (money.format_amount(x, self.currency) for x in limits)
                errors["price"] = f"Telegram accepts {self.currency} invoices from {low} to {high}."
        if self.kind == self.Kind.PHYSICAL and self.currency == money.STARS:
            errors["currency"] = "Telegram Stars pay for digital goods and services only."
        if self.kind == self.Kind.SUBSCRIPTION:
            if self.currency != money.STARS:
                errors["currency"] = "Subscriptions are paid in Telegram Stars (XTR)."
            elif self.price and self.price > SUBSCRIPTION_MAX_STARS:
                errors["price"] = (
                    f"Telegram accepts subscriptions of at most {SUBSCRIPTION_MAX_STARS} XTR."
                )
        if errors:
            raise ValidationError(errors)


class ProductOption(models.Model):
    """A choice the customer makes before the invoice (a size, a colour), in both languages."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="options")
    value = models.SlugField(
        max_length=16, help_text="Short code kept on the order line: S, M, XL, red."
    )
    label = models.CharField("label (English)", max_length=32)
    label_ru = models.CharField("label (Russian)", max_length=32, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField("offered", default=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "value"], name="shop_productoption_unique_value"
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def label_in(self, language: str) -> str:
        return (self.label_ru if language == "ru" else "") or self.label


class DigitalItem(models.Model):
    """One deliverable unit of a digital product (a code, a key, a link); handed out once."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="digital_items")
    content = models.TextField()
    order_item = models.ForeignKey(
        "shop.OrderItem",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="digital_items",
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["product"],
                condition=Q(order_item__isnull=True),
                name="shop_digitalitem_available",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} item #{self.pk}"


def language_for(language_code: str | None) -> str:
    """The bot speaks Russian to Russian-language users and English to everyone else."""
    return "ru" if (language_code or "").lower().startswith("ru") else "en"


class Customer(models.Model):
    telegram_id = models.BigIntegerField("Telegram user id", unique=True)
    username = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=128, blank=True)
    last_name = models.CharField(max_length=128, blank=True)
    language_code = models.CharField(max_length=16, blank=True)
    terms_version = models.CharField(max_length=32, blank=True)
    terms_accepted_at = models.DateTimeField(null=True, blank=True)
    is_blocked = models.BooleanField(
        "blocked", default=False, help_text="A blocked customer cannot pay."
    )
    is_flagged = models.BooleanField(
        "flagged", default=False, help_text="Marked for staff attention (e.g. a chargeback)."
    )
    flag_reason = models.CharField(max_length=255, blank=True)
    has_blocked_bot = models.BooleanField(
        default=False, help_text="Telegram answered 403: the user blocked the bot."
    )
    # Set by a bare /support: the customer's next message becomes their request.
    support_prompted_at = models.DateTimeField(null=True, blank=True)
    reminders_off_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Asked for no reminders about unpaid orders (/stop_reminders).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["username"], name="shop_customer_username"),
            # Telegram usernames ignore case: the admin's search looks them up that way.
            models.Index(Upper("username"), name="shop_customer_username_ci"),
        ]

    def __str__(self) -> str:
        return f"@{self.username}" if self.username else f"{self.full_name or self.telegram_id}"

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def language(self) -> str:
        return language_for(self.language_code)

    def has_accepted_terms(self, version: str) -> bool:
        return self.terms_accepted_at is not None and self.terms_version == version


class CustomerEvent(models.Model):
    """Append-only history of what staff and the system did to a customer, and why."""

    class Kind(models.TextChoices):
        BLOCKED = "blocked", "Blocked"
        UNBLOCKED = "unblocked", "Unblocked"
        FLAGGED = "flagged", "Flagged for attention"
        NOTE = "note", "Note"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.CharField(max_length=255)
    note = models.TextField(blank=True, help_text="Why, in the staff member's words.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The staff member; empty for the system.",
    )
    source = models.CharField(max_length=16, default="system", help_text="staff or system")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.message}"


class PaymentMode(models.TextChoices):
    """Whose money: a live provider token's, a TEST token's, or the local sandbox's demo money.

    Known when the invoice is sent (the token it carries). Test payments never count as money;
    sandbox payments only exist without a real bot, so they count, as demo money of their own.
    """

    LIVE = "live", "Live"
    TEST = "test", "Test"
    SANDBOX = "sandbox", "Sandbox (demo money)"


class OrderQuerySet(models.QuerySet):
    def awaiting_payment(self):
        return self.filter(status__in=[Order.Status.CREATED, Order.Status.INVOICED])


class Order(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", "Created"
        INVOICED = "invoiced", "Invoiced, awaiting payment"
        PAID = "paid", "Paid"
        AWAITING_SHIPMENT = "awaiting_shipment", "Awaiting shipment"
        SHIPPED = "shipped", "Shipped"
        FULFILLED = "fulfilled", "Fulfilled"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        DISPUTED = "disputed", "Disputed"
        CHARGED_BACK = "charged_back", "Charged back"

    reference = models.CharField(max_length=16, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.CREATED)
    currency = models.CharField(max_length=3)
    total_amount = models.PositiveBigIntegerField(help_text="In minor units.")
    stock_reserved = models.BooleanField(default=False)
    shipping_address = models.JSONField(null=True, blank=True)
    status_before_dispute = models.CharField(max_length=24, blank=True)
    needs_review = models.BooleanField(
        default=False, help_text="Something about this order needs a person to look at it."
    )
    review_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    invoiced_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(
        null=True, blank=True, help_text="When the one reminder about this unpaid invoice went."
    )
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    payment_mode = models.CharField(
        max_length=8, choices=PaymentMode.choices, blank=True,
        help_text="Set when the invoice is sent, from the provider token it carries.",
    )  # fmt: skip
    carrier = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True)
    tracking_url = models.URLField(blank=True)
    promo_code = models.ForeignKey(
        "shop.PromoCode", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    discount_amount = models.PositiveBigIntegerField(
        default=0, help_text="The promo code's discount, in minor units; the total is net of it."
    )
    delivery_amount = models.PositiveBigIntegerField(
        default=0, help_text="Delivery, in minor units, included in the total (physical goods)."
    )
    subscription = models.ForeignKey(
        "shop.Subscription",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        help_text="The subscription this order started or renewed.",
    )
    restocked_at = models.DateTimeField(
        null=True, blank=True, help_text="When a refund gave this order's units back to stock."
    )
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_amount__gt=0), name="shop_order_total_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="shop_order_status_created"),
            models.Index(fields=["customer", "-created_at"], name="shop_order_customer_recent"),
            models.Index(fields=["-created_at", "-id"], name="shop_order_recent"),
            models.Index(fields=["paid_at"], name="shop_order_paid_at"),
            # The dashboard's "needing review" tile, at a million orders.
            models.Index(
                fields=["created_at"], condition=Q(needs_review=True), name="shop_order_review"
            ),
        ]

    # Which status may follow which. Terminal statuses have no way out.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.CREATED: frozenset({Status.INVOICED, Status.CANCELLED, Status.EXPIRED}),
        Status.INVOICED: frozenset({Status.PAID, Status.CANCELLED, Status.EXPIRED}),
        Status.PAID: frozenset(
            {
                Status.AWAITING_SHIPMENT,
                Status.FULFILLED,
                Status.REFUNDED,
                Status.PARTIALLY_REFUNDED,
                Status.DISPUTED,
            }
        ),
        Status.AWAITING_SHIPMENT: frozenset(
            {
                Status.SHIPPED,
                Status.FULFILLED,
                Status.REFUNDED,
                Status.PARTIALLY_REFUNDED,
                Status.DISPUTED,
            }
        ),
        # Delivered (Mark delivered) is fulfilled.
        Status.SHIPPED: frozenset(
            {Status.FULFILLED, Status.REFUNDED, Status.PARTIALLY_REFUNDED, Status.DISPUTED}
        ),
        Status.FULFILLED: frozenset({Status.REFUNDED, Status.PARTIALLY_REFUNDED, Status.DISPUTED}),
        Status.PARTIALLY_REFUNDED: frozenset(
            {Status.PARTIALLY_REFUNDED, Status.REFUNDED, Status.DISPUTED}
        ),
        # A dispute ends by going back where the order was, or by a refund or chargeback.
        Status.DISPUTED: frozenset(
            {
                Status.PAID,
                Status.AWAITING_SHIPMENT,
                Status.SHIPPED,
                Status.FULFILLED,
                Status.PARTIALLY_REFUNDED,
                Status.REFUNDED,
                Status.CHARGED_BACK,
            }
        ),
        Status.CANCELLED: frozenset(),
        Status.EXPIRED: frozenset(),
        Status.REFUNDED: frozenset(),
        Status.CHARGED_BACK: frozenset(),
    }

    def __str__(self) -> str:
        return self.reference

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]

    @property
    def subtotal_amount(self) -> int:
        """The lines' total: before the promo code's discount, without delivery."""
        return self.total_amount + self.discount_amount - self.delivery_amount

    @property
    def is_awaiting_payment(self) -> bool:
        return self.status in (self.Status.CREATED, self.Status.INVOICED)

    @property
    def is_paid(self) -> bool:
        return self.paid_at is not None

    @property
    def total_display(self) -> str:
        return money.format_amount(self.total_amount, self.currency)

    @property
    def shipping_address_lines(self) -> list[str]:
        """The address Telegram collected, as it is written on a parcel."""
        address = self.shipping_address or {}
        if not isinstance(address, dict):
            return []
        city = " ".join(part for part in (address.get("post_code"), address.get("city")) if part)
        parts = [
            address.get("street_line1"),
            address.get("street_line2"),
            city,
            address.get("state"),
            address.get("country_code"),
        ]
        return [str(part) for part in parts if part]


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    # Snapshot of the product when ordered: later catalog edits do not change old orders.
    sku = models.CharField(max_length=32)
    title = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=Product.Kind.choices)
    unit_price = models.PositiveBigIntegerField()
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3)
    option = models.CharField(max_length=16, blank=True, help_text="The option's code (size).")
    option_label = models.CharField(
        max_length=64, blank=True, help_text="As the customer chose it."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="shop_orderitem_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        suffix = f" ({self.option_label})" if self.option_label else ""
        return f"{self.quantity} × {self.title}{suffix}"

    @classmethod
    def snapshot(
        cls,
        *,
        order: "Order",
        product: Product,
        quantity: int = 1,
        option: "ProductOption | None" = None,
    ) -> "OrderItem":
        """An unsaved line that copies the product as it is now: later edits leave it alone."""
        return cls(
            option=option.value if option else "",
            option_label=f"{product.option_name or 'Option'}: {option.label}" if option else "",
            order=order,
            product=product,
            sku=product.sku,
            title=product.title,
            kind=product.kind,
            unit_price=product.price,
            quantity=quantity,
            currency=product.currency,
        )

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


class OrderEvent(models.Model):
    """Append-only audit of every transition and staff action on an order."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        PAYMENT = "payment", "Payment"
        REFUND = "refund", "Refund"
        DISPUTE = "dispute", "Dispute"
        FULFILMENT = "fulfilment", "Fulfilment"
        NOTE = "note", "Note"
        REVIEW = "review", "Needs review"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The staff member; empty for the customer or the system.",
    )
    source = models.CharField(max_length=16, default="system", help_text="staff, customer, system")
    message = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.message}"


class SupportRequest(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        ANSWERED = "answered"
        CLOSED = "closed"

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="support_requests"
    )
    text = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="shop_support_queue")]

    def __str__(self) -> str:
        return f"Support #{self.pk} from {self.customer}"


class Message(models.Model):
    """The conversation with a customer, both ways; outbound rows are also the outbox.

    An outbound row holds the Bot API call to make (`method`, `params`); the shop and payments
    write rows, and only botbridge sends them (see `shop.outbox`).
    """

    class Direction(models.TextChoices):
        INBOUND = "in", "From the customer"
        OUTBOUND = "out", "To the customer"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    chat_id = models.BigIntegerField()
    direction = models.CharField(max_length=3, choices=Direction.choices)
    method = models.CharField(max_length=32, default="sendMessage")
    text = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    # e.g. "receipt:payment:42": the same notice is queued once however often it is asked.
    dedupe_key = models.CharField(max_length=128, null=True, blank=True, unique=True)
    telegram_message_id = models.BigIntegerField(null=True, blank=True)
    # The Telegram update an inbound row came from (its update_id).
    telegram_update_id = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="shop_message_transcript"),
            models.Index(
                fields=["status", "created_at"],
                condition=Q(direction="out") & ~Q(status="sent"),
                name="shop_message_outbox",
            ),
        ]

    def __str__(self) -> str:
        arrow = "→" if self.direction == self.Direction.OUTBOUND else "←"
        return f"{arrow} {self.chat_id}: {self.text[:40]}"


class Cart(models.Model):
    """A customer's cart: kept in the database, so it outlives messages and sessions."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="cart")
    currency = models.CharField(max_length=3, blank=True, help_text="A cart holds one currency.")
    promo_code = models.ForeignKey(
        "shop.PromoCode", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set when the bot asked for a promo code: the customer's next message is the code.
    promo_prompted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Cart of {self.customer}"


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    option = models.CharField(max_length=16, blank=True)
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # The price when it was added: a price changed since makes the line stale.
    unit_price = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cart", "product", "option"], name="shop_cartline_unique_product"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="shop_cartline_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


class PromoCode(models.Model):
    class Kind(models.TextChoices):
        PERCENT = "percent", "Percent off"
        FIXED = "fixed", "Fixed amount off"

    code = models.CharField(
        max_length=32,
        unique=True,
        help_text="What customers type; letters and digits, case does not matter.",
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PERCENT)
    percent = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="1 to 100."
    )
    amount = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Fixed discount in minor units of its currency."
    )
    currency = models.CharField(
        max_length=3,
        blank=True,
        choices=money.currency_choices,
        help_text="A fixed discount applies to carts in this currency only.",
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uses in total; empty means no limit."
    )
    max_uses_per_customer = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uses per customer; empty means no limit."
    )
    products = models.ManyToManyField(
        Product, blank=True, related_name="promo_codes", help_text="Empty: every product."
    )
    is_active = models.BooleanField("active", default=True)
    # Uses held by checkouts in progress plus uses paid: what the total limit counts.
    uses_held = models.PositiveIntegerField(default=0, editable=False)
    times_used = models.PositiveIntegerField(
        default=0, editable=False, help_text="Paid uses, counted when the payment is recorded."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="percent", percent__gte=1, percent__lte=100)
                | Q(kind="fixed", amount__gt=0) & ~Q(currency=""),
                name="shop_promocode_value",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def value_display(self) -> str:
        if self.kind == self.Kind.PERCENT:
            return f"{self.percent}%"
        return money.format_amount(self.amount or 0, self.currency)

    def clean(self) -> None:
        errors = {}
        self.code = (self.code or "").strip().upper()
        if self.code and not self.code.isalnum():
            errors["code"] = "Use letters and digits only."
        if self.kind == self.Kind.PERCENT and not (self.percent and 1 <= self.percent <= 100):
            errors["percent"] = "A percent discount needs a percent from 1 to 100."
        if self.kind == self.Kind.FIXED:
            if not self.amount:
                errors["amount"] = "A fixed discount needs an amount."
            if not self.currency:
                errors["currency"] = "A fixed discount needs its currency."
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            errors["valid_until"] = "The end must be after the start."
        if errors:
            raise ValidationError(errors)


class PromoRedemption(models.Model):
    """One order's use of a code: held at pre-checkout, counted once when paid."""

    class Status(models.TextChoices):
        HELD = "held", "Held by a checkout"
        USED = "used", "Used (paid)"
        RELEASED = "released", "Released (never paid)"

    promo_code = models.ForeignKey(PromoCode, on_delete=models.PROTECT, related_name="redemptions")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="promo_redemption")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    discount_amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["promo_code", "customer", "status"], name="shop_promo_per_customer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.promo_code} on {self.order}"


class Subscription(models.Model):
    """Access bought with a Stars subscription: 30 days at a time, renewed by Telegram."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="subscriptions")
    first_order = models.OneToOneField(
        Order, on_delete=models.PROTECT, related_name="started_subscription"
    )
    # The first payment's charge id: what editUserStarSubscription names the subscription by.
    telegram_payment_charge_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    is_canceled = models.BooleanField(
        "renewal cancelled", default=False, help_text="Telegram will not renew it."
    )
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    renewals = models.PositiveIntegerField(default=0)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.product.title} for {self.customer}"


class SubscriptionEvent(models.Model):
    """Append-only: started, renewed, renewal cancelled or re-enabled (and by whom), expired."""

    class Kind(models.TextChoices):
        STARTED = "started", "Started"
        RENEWED = "renewed", "Renewed"
        CANCELLED = "cancelled", "Renewal cancelled"
        REENABLED = "reenabled", "Renewal re-enabled"
        EXPIRED = "expired", "Expired"

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.CharField(max_length=255)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=16, default="system", help_text="staff, customer, system")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.message
