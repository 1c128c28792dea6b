"""The shop's write paths; every change to its models goes through one of these.

customers: first contact, terms, blocking and flags (with the customer's history);
orders: creation, invoicing, the transition table, cancellation, expiry (with the order's
audit trail); stock: reservation at pre-checkout and release, digital items; support;
cart: the stored cart and its checkout; promos: codes held at pre-checkout, counted when paid;
subscriptions: Stars subscriptions started, renewed, cancelled, expired.
"""

from shop.services.cart import (
    CartView,
    cart_add,
    cart_change,
    cart_checkout,
    cart_clear,
    cart_get,
    cart_promo_apply,
    cart_promo_prompt,
    cart_promo_remove,
    cart_refresh,
    cart_view,
)
from shop.services.customers import (
    customer_accept_terms,
    customer_event_add,
    customer_flag,
    customer_mark_bot_blocked,
    customer_prompt_support,
    customer_set_blocked,
    customer_upsert_from_telegram,
)
from shop.services.orders import (
    order_cancel,
    order_create,
    order_deliver,
    order_event_add,
    order_expire_stale,
    order_flag_for_review,
    order_invoice,
    order_promo_use,
    order_reference_new,
    order_restock,
    order_set_payment_mode,
    order_set_shipping_address,
    order_ship,
    order_transition,
    order_transition_many,
)
from shop.services.promos import promo_find, promo_hold, promo_release
from shop.services.reminders import customer_reminders_off, invoices_remind
from shop.services.stock import (
    CheckoutLine,
    order_checkout,
    order_item_deliver_digital,
    order_release_stock,
    order_reserve_stock,
)
from shop.services.subscriptions import (
    subscription_paid,
    subscription_renewal_order,
    subscription_set_renewal,
    subscriptions_expire,
)
from shop.services.support import support_request_answer, support_request_create

__all__ = [
    "CartView",
    "cart_add",
    "cart_change",
    "cart_checkout",
    "cart_clear",
    "cart_get",
    "cart_promo_apply",
    "cart_promo_prompt",
    "cart_promo_remove",
    "cart_refresh",
    "cart_view",
    "order_promo_use",
    "order_restock",
    "promo_find",
    "promo_hold",
    "promo_release",
    "subscription_paid",
    "subscription_renewal_order",
    "subscription_set_renewal",
    "subscriptions_expire",
    "customer_reminders_off",
    "invoices_remind",
    "CheckoutLine",
    "customer_accept_terms",
    "customer_event_add",
    "customer_flag",
    "customer_mark_bot_blocked",
    "customer_prompt_support",
    "customer_set_blocked",
    "customer_upsert_from_telegram",
    "order_cancel",
    "order_checkout",
    "order_create",
    "order_deliver",
    "order_event_add",
    "order_expire_stale",
    "order_flag_for_review",
    "order_invoice",
    "order_item_deliver_digital",
    "order_reference_new",
    "order_release_stock",
    "order_reserve_stock",
    "order_set_payment_mode",
    "order_set_shipping_address",
    "order_ship",
    "order_transition",
    "order_transition_many",
    "support_request_answer",
    "support_request_create",
]
