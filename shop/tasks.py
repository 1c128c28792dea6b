from celery import shared_task
from django.conf import settings

from shop import services


@shared_task(name="shop.order_expire_stale")
def order_expire_stale() -> int:
    return services.order_expire_stale(older_than=settings.SHOP_INVOICE_TTL)


@shared_task(name="shop.invoices_remind")
def invoices_remind() -> int:
    return services.invoices_remind()


@shared_task(name="shop.subscriptions_expire")
def subscriptions_expire() -> int:
    return services.subscriptions_expire()
