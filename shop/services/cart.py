"""The cart: products with their option and quantity, one currency, an optional promo code.

Stored, so it outlives messages and sessions. Checkout turns it into one order with one
invoice; a cart gone stale since (a product withdrawn, a price changed) is refused with what
changed, and `cart_refresh` brings it up to date for the customer to look at again.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from core import money
from core.errors import DomainError, NotAvailable
from shop.models import Cart, CartLine, Customer, Order, OrderItem, Product, PromoCode
from shop.services import orders, promos

MAX_QUANTITY = 99
MAX_LINES = 20


@dataclass
class LineView:
    line: CartLine
    product: Product
    stale: str = ""  # "" | "inactive" | "price_changed" | "option" | "out_of_stock"

    @property
    def line_total(self) -> int:
        return self.line.line_total


@dataclass
class CartView:
    cart: Cart
    lines: list[LineView] = field(default_factory=list)
    subtotal: int = 0
    discount: int = 0
    delivery: int = 0  # physical goods in the cart: SHOP_DELIVERY_FEES for its currency
    promo: PromoCode | None = None
    promo_refusal: str | None = None

    @property
    def currency(self) -> str:
        return self.cart.currency

    @property
    def total(self) -> int:
        """What the invoice will ask: the lines, less the code's discount, plus delivery."""
        return self.subtotal - self.discount + self.delivery

    @property
    def stale(self) -> list[LineView]:
        return [line for line in self.lines if line.stale]


def cart_get(*, customer: Customer, lock: bool = False) -> Cart:
    cart, _ = Cart.objects.get_or_create(customer=customer)
    return Cart.objects.select_for_update().get(pk=cart.pk) if lock else cart


def _line_stale(line: CartLine, product: Product) -> str:
    if not product.is_active or product.kind == Product.Kind.SUBSCRIPTION:
        return "inactive"
    if product.price != line.unit_price or product.currency != line.currency:
        return "price_changed"
    if line.option or product.options.filter(is_active=True).exists():
        try:
            orders.option_get(product, line.option)
        except DomainError:
            return "option"
    if product.stock is not None and product.stock < line.quantity:
        return "out_of_stock"
    return ""


def cart_view(*, cart: Cart) -> CartView:
    """The cart as the customer sees it: lines (stale ones marked), discount, total."""
    view = CartView(cart=cart)
    for line in cart.lines.select_related("product").order_by("added_at", "pk"):
        view.lines.append(
            LineView(line=line, product=line.product, stale=_line_stale(line, line.product))
        )
    view.subtotal = sum(line.line_total for line in view.lines)
    if any(line.product.kind == Product.Kind.PHYSICAL for line in view.lines):
        view.delivery = orders.delivery_fee(cart.currency)
    if cart.promo_code_id and view.lines:
        view.promo = cart.promo_code
        priced = [(line.product.pk, line.line_total) for line in view.lines]
        view.promo_refusal = promos.promo_refusal(
            promo=view.promo, customer=cart.customer, currency=cart.currency, lines=priced
        )
        if view.promo_refusal is None:
            view.discount = promos.promo_discount(
                promo=view.promo, currency=cart.currency, lines=priced
            )
    return view


def _touch(cart: Cart) -> None:
    cart.promo_prompted_at = None
    cart.save(update_fields=["currency", "promo_code", "promo_prompted_at", "updated_at"])


@transaction.atomic
def cart_add(
    *,
    customer: Customer,
    product: Product,
    option: str = "",
    quantity: int = 1,
    start_new: bool = False,
) -> Cart:
    """Add units of a product (with its option). A cart holds one currency: a product in
    another one is refused (code `other_currency`) unless the customer starts a new cart."""
    if customer.is_blocked:
        raise NotAvailable("This account cannot place orders.", code="customer_blocked")
    if not product.is_active:
        raise NotAvailable("This product is not on sale.", code="inactive")
    if product.kind == Product.Kind.SUBSCRIPTION:
        raise DomainError("Subscriptions are bought on their own.", code="not_in_cart")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise DomainError(f"Quantity must be 1 to {MAX_QUANTITY}.", code="bad_quantity")
    orders.option_get(product, option)
    cart = cart_get(customer=customer, lock=True)
    lines = cart.lines.all()
    if lines.exists() and cart.currency != product.currency:
        if not start_new:
            raise DomainError(
                f"The cart is in {cart.currency}; {product.title} is in {product.currency}.",
                code="other_currency",
            )
        lines.delete()
        cart.promo_code = None
    cart.currency = product.currency
    line = lines.filter(product=product, option=option).first()
    if line is None and lines.count() >= MAX_LINES:
        raise DomainError(f"A cart holds at most {MAX_LINES} products.", code="cart_full")
    wanted = (line.quantity if line else 0) + quantity
    if wanted > MAX_QUANTITY:
        raise DomainError(f"At most {MAX_QUANTITY} of one product.", code="bad_quantity")
    if product.stock is not None and product.stock < wanted:
        raise NotAvailable("Not enough in stock.", code="out_of_stock")
    if line is None:
        CartLine.objects.create(
            cart=cart,
            product=product,
            option=option,
            quantity=wanted,
            unit_price=product.price,
            currency=product.currency,
        )
    else:
        # Adding again is looking at the product again: the line takes today's price.
        line.quantity, line.unit_price = wanted, product.price
        line.save(update_fields=["quantity", "unit_price"])
    _touch(cart)
    return cart


@transaction.atomic
def cart_change(*, customer: Customer, line_id: int, delta: int) -> Cart:
    """One more or one fewer of a line; at zero the line goes."""
    cart = cart_get(customer=customer, lock=True)
    line = cart.lines.select_related("product").filter(pk=line_id).first()
    if line is None:
        raise DomainError("That line is no longer in the cart.", code="no_line")
    wanted = line.quantity + delta
    if wanted <= 0:
        line.delete()
    else:
        if wanted > MAX_QUANTITY:
            raise DomainError(f"At most {MAX_QUANTITY} of one product.", code="bad_quantity")
        stock = line.product.stock
        if delta > 0 and stock is not None and stock < wanted:
            raise NotAvailable("Not enough in stock.", code="out_of_stock")
        line.quantity = wanted
        line.save(update_fields=["quantity"])
    if not cart.lines.exists():
        cart.currency, cart.promo_code = "", None
    _touch(cart)
    return cart


@transaction.atomic
def cart_clear(*, customer: Customer) -> Cart:
    cart = cart_get(customer=customer, lock=True)
    cart.lines.all().delete()
    cart.currency, cart.promo_code = "", None
    _touch(cart)
    return cart


@transaction.atomic
def cart_refresh(*, customer: Customer) -> Cart:
    """Bring a stale cart up to date: withdrawn products out, today's prices in."""
    cart = cart_get(customer=customer, lock=True)
    for line_view in cart_view(cart=cart).stale:
        line, product = line_view.line, line_view.product
        if line_view.stale == "price_changed" and product.currency == cart.currency:
            line.unit_price = product.price
            line.save(update_fields=["unit_price"])
        elif line_view.stale == "out_of_stock" and product.stock:
            line.quantity = product.stock
            line.save(update_fields=["quantity"])
        else:
            line.delete()
    if not cart.lines.exists():
        cart.currency, cart.promo_code = "", None
    _touch(cart)
    return cart


@transaction.atomic
def cart_promo_prompt(*, customer: Customer) -> Cart:
    """The bot asked for a code: the customer's next message is taken as one."""
    cart = cart_get(customer=customer, lock=True)
    cart.promo_prompted_at = timezone.now()
    cart.save(update_fields=["promo_prompted_at", "updated_at"])
    return cart


@transaction.atomic
def cart_promo_apply(*, customer: Customer, code: str) -> Cart:
    """Put a code on the cart; refused with its reason (an `err_<code>` text) otherwise."""
    cart = cart_get(customer=customer, lock=True)
    promo = promos.promo_find(code=code)
    if promo is None:
        # Refused, nothing changes: a customer asked for a code may simply type it again.
        raise DomainError("No such promo code.", code="promo_unknown")
    if not cart.lines.exists():
        raise DomainError("The cart is empty.", code="cart_empty")
    priced = [(line.product_id, line.line_total) for line in cart.lines.all()]
    refusal = promos.promo_refusal(
        promo=promo, customer=customer, currency=cart.currency, lines=priced
    )
    if refusal:
        raise DomainError(f"The code {promo.code} cannot be used: {refusal}.", code=refusal)
    cart.promo_code = promo
    _touch(cart)
    return cart


@transaction.atomic
def cart_promo_remove(*, customer: Customer) -> Cart:
    cart = cart_get(customer=customer, lock=True)
    cart.promo_code = None
    _touch(cart)
    return cart


@transaction.atomic
def cart_checkout(*, customer: Customer) -> Order:
    """The cart becomes one order with one invoice, and is emptied.

    Refused, and nothing changes, when the cart is empty (`cart_empty`), a line went stale
    (`cart_stale`), the code no longer applies (its refusal code), or the total is outside
    what Telegram accepts in the currency (`cart_amount`).
    """
    if customer.is_blocked:
        raise NotAvailable("This account cannot place orders.", code="customer_blocked")
    cart = cart_get(customer=customer, lock=True)
    view = cart_view(cart=cart)
    if not view.lines:
        raise DomainError("The cart is empty.", code="cart_empty")
    if view.stale:
        names = ", ".join(line.product.title for line in view.stale)
        raise DomainError(f"Changed since added: {names}.", code="cart_stale")
    if view.promo_refusal:
        raise DomainError("The promo code no longer applies.", code=view.promo_refusal)
    limits = money.amount_limits(cart.currency)
    if limits and not limits[0] <= view.total <= limits[1]:
        raise DomainError("The total is outside what Telegram accepts.", code="cart_amount")
    order = orders.order_new(
        customer=customer,
        currency=cart.currency,
        total_amount=view.total,
        discount_amount=view.discount,
        delivery_amount=view.delivery,
        promo_code=view.promo if view.discount else None,
    )
    OrderItem.objects.bulk_create(
        OrderItem.snapshot(
            order=order,
            product=line.product,
            quantity=line.line.quantity,
            option=orders.option_get(line.product, line.line.option),
        )
        for line in view.lines
    )
    orders.order_event_add(
        order=order,
        kind="status",
        message="Order created from the cart",
        source="customer",
        to_status=order.status,
        data={
            "lines": [
                {
                    "sku": line.product.sku,
                    "quantity": line.line.quantity,
                    "option": line.line.option,
                }
                for line in view.lines
            ],
            "promo_code": view.promo.code if view.discount else "",
            "discount": view.discount,
        },
    )
    cart.lines.all().delete()
    cart.currency, cart.promo_code = "", None
    _touch(cart)
    return orders.order_send_invoice(order=order)
