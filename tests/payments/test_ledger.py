import threading

import pytest
from django.db import IntegrityError, close_old_connections, transaction

from core.errors import DomainError
from payments import services as payment_services
from payments.models import LedgerEntry, Payment, Refund
from shop import services
from shop.models import Order
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def order_in(status, customer=None, product=None):
    order = services.order_create(
        customer=customer or CustomerFactory(), product=product or ProductFactory()
    )
    Order.objects.filter(pk=order.pk).update(status=status)
    order.refresh_from_db()
    return order


def paid_payment(amount=1000, currency="USD"):
    customer = CustomerFactory()
    order = order_in(
        "paid", customer=customer, product=ProductFactory(price=amount, currency=currency)
    )
    from django.utils import timezone

    return Payment.objects.create(
        order=order,
        customer=customer,
        telegram_payment_charge_id=f"c-{order.pk}",
        provider="apay",
        amount=amount,
        currency=currency,
        paid_at=timezone.now(),
    )


def test_refund_above_refundable_is_refused_in_code_and_changes_nothing():
    payment = paid_payment()
    payment_services.refund_request(payment=payment, amount=600, reason="customer_request")
    with pytest.raises(DomainError, match="At most 4.00 USD"):
        payment_services.refund_request(payment=payment, amount=401, reason="customer_request")
    payment.refresh_from_db()
    assert payment.refunded_amount == 600
    assert Refund.objects.count() == 1


def test_refund_above_refundable_is_refused_by_the_database_itself():
    payment = paid_payment()
    payment_services.refund_request(payment=payment, amount=600, reason="customer_request")
    # Bypass every check in code: the database's constraint still says no.
    with (
        pytest.raises(IntegrityError, match="payments_payment_refund_within_amount"),
        transaction.atomic(),
    ):
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=1001)
    payment.refresh_from_db()
    assert payment.refunded_amount == 600


def test_ledger_key_posts_once_and_conflicting_figures_are_refused():
    customer = CustomerFactory()
    first, created = payment_services.ledger_post(
        customer=customer, kind="credit", amount=500, currency="USD", idempotency_key="k1"
    )
    again, created_again = payment_services.ledger_post(
        customer=customer, kind="credit", amount=500, currency="USD", idempotency_key="k1"
    )
    assert (created, created_again, again.pk) == (True, False, first.pk)
    with pytest.raises(payment_services.LedgerConflict):
        payment_services.ledger_post(
            customer=customer, kind="credit", amount=501, currency="USD", idempotency_key="k1"
        )
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_ledger_key_posts_once_under_two_concurrent_attempts():
    customer = CustomerFactory()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def post():
        try:
            with transaction.atomic():
                barrier.wait()
                results.append(
                    payment_services.ledger_post(
                        customer=customer,
                        kind="credit",
                        amount=500,
                        currency="USD",
                        idempotency_key="race",
                    )[1]
                )
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False, True]
    assert LedgerEntry.objects.filter(idempotency_key="race").count() == 1


def test_the_credit_task_retries_a_database_error_instead_of_dropping_the_payment(monkeypatch):
    from celery.exceptions import Retry
    from django.db import OperationalError

    from payments import tasks

    calls = []

    def flaky(*, payment_id):
        calls.append(payment_id)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return 1

    monkeypatch.setattr(tasks.services, "payment_credit_batch", flaky)
    # The task asks to be run again (a worker does so after the backoff), not to fail.
    with pytest.raises(Retry, match=r"Retry in \d+s"):  # backoff with jitter
        tasks.payment_credit.apply(args=(42,))
    assert calls == [42]
    assert tasks.payment_credit.apply(args=(42,)).get() == 1
    assert {OperationalError, ConnectionError} <= set(tasks.payment_credit.autoretry_for)
