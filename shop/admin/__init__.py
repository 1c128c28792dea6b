"""Staff screens for the shop's own models.

Product, support requests, the audit trail and the conversation with customers are
registered here. Orders and customers are shown with their payments and balance, which
live in a higher layer: their admins here are bases that `backoffice.admin` extends and
registers.
"""

from shop.admin.base import CurrencyFilter, NoteForm, ReadOnlyInline
from shop.admin.conversation import MessageAdmin, SupportRequestAdmin
from shop.admin.customers import CustomerAdmin
from shop.admin.orders import (
    MessageInline,
    OrderAdmin,
    OrderEventAdmin,
    OrderEventInline,
    OrderItemInline,
)
from shop.admin.products import ProductAdmin
from shop.admin.promotions import PromoCodeAdmin, SubscriptionAdmin

__all__ = [
    "CurrencyFilter",
    "CustomerAdmin",
    "MessageAdmin",
    "MessageInline",
    "NoteForm",
    "OrderAdmin",
    "OrderEventAdmin",
    "OrderEventInline",
    "OrderItemInline",
    "ProductAdmin",
    "PromoCodeAdmin",
    "SubscriptionAdmin",
    "ReadOnlyInline",
    "SupportRequestAdmin",
]
