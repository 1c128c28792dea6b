import pytest

from core.errors import IllegalTransition
from shop import services
from shop.models import CustomerEvent, Order, OrderEvent, Product
from shop.services import orders as order_services
from tests.conftest import post_step
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def reserved_order(stock=5, quantity=2):
    product = ProductFactory(stock=stock, kind=Product.Kind.PHYSICAL, price=1000)
    order = services.order_create(customer=CustomerFactory(), product=product, quantity=quantity)
    services.order_transition(order=order, to_status=Order.Status.INVOICED)
    assert services.order_reserve_stock(order=order)
    product.refresh_from_db()
    assert product.stock == stock - quantity
    return order, product


def test_cancel_from_the_admin_gives_the_stock_back_with_the_cancellation(
    support_client, django_capture_on_commit_callbacks
):
    order, product = reserved_order()
    response = post_step(
        support_client,
        django_capture_on_commit_callbacks,
        f"/admin/shop/order/{order.pk}/cancel/",
        {"note": "Customer changed their mind"},
    )
    assert response.status_code == 200
    order.refresh_from_db()
    product.refresh_from_db()
    assert (order.status, order.stock_reserved, product.stock) == ("cancelled", False, 5)
    event = order.events.last()
    assert (event.to_status, event.actor, event.message) == (
        "cancelled",
        support_client.user,
        "Customer changed their mind",
    )


def test_cancel_that_cannot_release_its_stock_changes_nothing(monkeypatch):
    order, product = reserved_order()
    events = OrderEvent.objects.count()

    def broken(*, order):
        raise RuntimeError("stock table unavailable")

    monkeypatch.setattr(order_services, "order_release_stock", broken)
    with pytest.raises(RuntimeError):
        services.order_cancel(order=order)
    order.refresh_from_db()
    product.refresh_from_db()
    assert (order.status, order.stock_reserved, product.stock) == ("invoiced", True, 3)
    assert OrderEvent.objects.count() == events


def test_blocking_keeps_who_when_and_why_in_the_customer_history(
    support_client, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    post_step(
        support_client,
        django_capture_on_commit_callbacks,
        f"/admin/shop/customer/{customer.pk}/block/",
        {"note": "Chargeback fraud, see dispute #4"},
    )
    post_step(
        support_client,
        django_capture_on_commit_callbacks,
        f"/admin/shop/customer/{customer.pk}/unblock/",
        {"note": "Cleared with the bank"},
    )
    customer.refresh_from_db()
    assert customer.is_blocked is False
    history = list(customer.events.values_list("kind", "note", "actor", "source"))
    user = support_client.user.pk
    assert history == [
        ("blocked", "Chargeback fraud, see dispute #4", user, "staff"),
        ("unblocked", "Cleared with the bank", user, "staff"),
    ]
    page = support_client.get(f"/admin/shop/customer/{customer.pk}/change/").content.decode()
    assert "Chargeback fraud, see dispute #4" in page


def test_blocking_a_blocked_customer_adds_no_history():
    customer = CustomerFactory(is_blocked=True)
    services.customer_set_blocked(customer=customer, is_blocked=True, note="again")
    assert not CustomerEvent.objects.exists()


def test_moving_many_orders_checks_the_transition_table_and_changes_nothing_if_one_may_not():
    paid = [services.order_create(customer=CustomerFactory(), product=ProductFactory())
            for _ in range(2)]  # fmt: skip
    for order in paid:
        Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)
    closed = services.order_create(customer=CustomerFactory(), product=ProductFactory())
    Order.objects.filter(pk=closed.pk).update(status=Order.Status.CANCELLED)
    events = OrderEvent.objects.count()
    with pytest.raises(IllegalTransition):
        services.order_transition_many(
            orders=[*paid, closed], to_status=Order.Status.FULFILLED, message="Fulfilled"
        )
    assert set(Order.objects.values_list("status", flat=True)) == {"paid", "cancelled"}
    assert OrderEvent.objects.count() == events

    moved = services.order_transition_many(
        orders=paid, to_status=Order.Status.FULFILLED, message="Fulfilled",
        data={paid[0].pk: {"delivered_items": 0}},
    )  # fmt: skip
    assert moved == 2
    for order in paid:
        order.refresh_from_db()
        assert order.status == "fulfilled" and order.fulfilled_at is not None
        event = order.events.last()
        assert (event.from_status, event.to_status, event.source) == ("paid", "fulfilled", "system")
    assert paid[0].events.last().data == {"delivered_items": 0}
