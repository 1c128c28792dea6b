"""Every role against every admin page and staff step: allowed → 200, forbidden → 403.

The table below is the specification; the test also fails when an admin or a step is added
without a row here, so nothing new escapes the check.
"""

import pytest
from django.contrib import admin
from django.core.files.base import ContentFile
from django.utils import timezone

from payments import services as payment_services
from payments.models import (
    ChargeConflict,
    Difference,
    ExportJob,
    StarTransaction,
    StatementImport,
    StatementRow,
)
from payments.services import disputes
from shop import services as shop_services
from shop.models import Message, Order, PromoCode, Subscription, SupportRequest
from tests.conftest import role_user
from tests.factories import CustomerFactory, ProductFactory, paid_order

pytestmark = pytest.mark.django_db

S, F, M = "Support", "Finance", "Manager"
NOBODY: set[str] = set()
EVERYONE = {S, F, M}

# (url with {placeholders}, roles allowed). Superusers may do everything and are not roles.
PAGES = [
    ("/admin/", EVERYONE),
    ("/admin/shop/product/", {S, M}),
    ("/admin/shop/product/add/", {M}),
    ("/admin/shop/product/{product}/change/", {S, M}),
    ("/admin/shop/customer/", EVERYONE),
    ("/admin/shop/customer/add/", NOBODY),
    ("/admin/shop/customer/{customer}/change/", EVERYONE),
    ("/admin/shop/customer/{customer}/block/", {S, M}),
    ("/admin/shop/customer/{customer}/unblock/", {S, M}),
    ("/admin/shop/order/", EVERYONE),
    ("/admin/shop/order/add/", NOBODY),
    ("/admin/shop/order/{order}/change/", EVERYONE),
    ("/admin/shop/order/{order}/ship/", {S, M}),
    ("/admin/shop/order/{order}/cancel/", {S, M}),
    ("/admin/shop/order/{order}/deliver/", {S, M}),
    ("/admin/shop/order/{order}/packing/", EVERYONE),
    ("/admin/shop/orderevent/", EVERYONE),
    ("/admin/shop/orderevent/{orderevent}/change/", EVERYONE),
    ("/admin/shop/promocode/", EVERYONE),
    ("/admin/shop/promocode/add/", {M}),
    ("/admin/shop/promocode/{promocode}/change/", EVERYONE),
    ("/admin/shop/subscription/", EVERYONE),
    ("/admin/shop/subscription/{subscription}/change/", EVERYONE),
    ("/admin/shop/subscription/{subscription}/cancel/", {S, M}),
    ("/admin/shop/subscription/{subscription}/reenable/", {S, M}),
    ("/admin/shop/supportrequest/", {S, M}),
    ("/admin/shop/supportrequest/{supportrequest}/change/", {S, M}),
    ("/admin/shop/message/", {S, M}),
    ("/admin/shop/message/{message}/change/", {S, M}),
    ("/admin/botbridge/telegramupdate/", EVERYONE),
    ("/admin/botbridge/webhookstatus/", {M}),
    ("/admin/golive/", {M}),
    ("/admin/payments/payment/", {F, M}),
    ("/admin/payments/payment/{payment}/change/", {F, M}),
    ("/admin/payments/payment/{payment}/refund/", {F, M}),
    ("/admin/payments/payment/{payment}/dispute/", {F, M}),
    ("/admin/payments/payment/{payment}/apay/", {F, M}),
    ("/admin/payments/refund/", {F, M}),
    ("/admin/payments/refund/{refund}/change/", {F, M}),
    ("/admin/payments/refund/{refund}/confirm/", {F, M}),
    ("/admin/payments/dispute/", {F, M}),
    ("/admin/payments/dispute/{dispute}/change/", {F, M}),
    ("/admin/payments/dispute/{dispute}/evidence/", {F, M}),
    ("/admin/payments/dispute/{dispute}/submit-evidence/", {F, M}),
    ("/admin/payments/dispute/{dispute}/win/", {F, M}),
    ("/admin/payments/dispute/{dispute}/lose/", {F, M}),
    ("/admin/payments/dispute/{dispute}/accept/", {F, M}),
    ("/admin/payments/chargeconflict/", {F, M}),
    ("/admin/payments/chargeconflict/{chargeconflict}/change/", {F, M}),
    ("/admin/payments/chargeconflict/{chargeconflict}/resolve/", {F, M}),
    ("/admin/payments/ledgerentry/", {F, M}),
    ("/admin/payments/ledgerentry/{ledgerentry}/change/", {F, M}),
    ("/admin/payments/ledgerentry/add/", NOBODY),
    ("/admin/payments/exportjob/", {F, M}),
    ("/admin/payments/exportjob/add/", {F, M}),
    ("/admin/payments/exportjob/{exportjob}/change/", {F, M}),
    ("/admin/payments/exportjob/{exportjob}/download/", {F, M}),
    ("/admin/payments/difference/", {F, M}),
    ("/admin/payments/difference/reconciliation/", {F, M}),
    ("/admin/payments/difference/reconciliation/?provider=apay", {F, M}),
    ("/admin/payments/difference/{difference}/change/", {F, M}),
    ("/admin/payments/difference/{difference}/resolve/", {F, M}),
    ("/admin/payments/difference/{difference}/record/", {F, M}),
    ("/admin/payments/difference/{weakdifference}/confirm/", {F, M}),
    ("/admin/payments/startransaction/", {F, M}),
    ("/admin/payments/startransaction/{startransaction}/change/", {F, M}),
    ("/admin/payments/statementimport/", {F, M}),
    ("/admin/payments/statementimport/{statementimport}/change/", {F, M}),
    ("/admin/payments/statementrow/", {F, M}),
    ("/admin/payments/statementrow/{statementrow}/change/", {F, M}),
    ("/admin/backoffice/backup/", {M}),
    ("/admin/2fa/", EVERYONE),
    ("/admin/axes/accessattempt/", {M}),
    ("/admin/axes/accesslog/", {M}),
    ("/admin/axes/accessfailurelog/", {M}),
    ("/admin/otp_totp/totpdevice/", NOBODY),
    ("/admin/otp_static/staticdevice/", NOBODY),
    ("/admin/auth/user/", NOBODY),
    ("/admin/auth/group/", NOBODY),
    ("/admin/admin_interface/theme/", NOBODY),
]


@pytest.fixture
def objects(fake_telegram, django_capture_on_commit_callbacks):
    """One of everything the pages above show, in states where every step is offered."""
    customer = CustomerFactory()
    product = ProductFactory(price=1000, currency="USD", kind="physical")
    with django_capture_on_commit_callbacks(execute=True):
        shipped = paid_order(customer, product)
        refunded = paid_order(customer, ProductFactory(price=500, currency="EUR"))
        disputed = paid_order(customer, ProductFactory(price=700, currency="USD"))
        refund = payment_services.refund_request(
            payment=refunded, amount=100, reason="customer_request"
        )
        dispute = disputes.dispute_open(
            payment=disputed, reason="fraudulent", amount=700, evidence_due_by=timezone.now()
        )
        invoiced = shop_services.order_create(customer=customer, product=product)
        shop_services.order_transition(order=invoiced, to_status=Order.Status.INVOICED)
        request = shop_services.support_request_create(customer=customer, text="Where is it?")
    conflict = ChargeConflict.objects.create(
        payment=shipped, telegram_payment_charge_id=shipped.telegram_payment_charge_id,
        amount=1, currency="USD",
    )  # fmt: skip
    job = ExportJob.objects.create(report="payments", status=ExportJob.Status.DONE)
    now = timezone.now()
    tx = StarTransaction.objects.create(
        transaction_id="stars-lost-1", direction="in", position=0, amount=250, date=now,
        partner_type="user", kind="sale", user_id=customer.telegram_id,
    )  # fmt: skip
    statement = StatementImport.objects.create(provider="apay", source="upload", sha256="0" * 64)
    row = StatementRow.objects.create(
        transaction_id="900000001", order_id="00000000000000aa", amount=1000,
        amount_after_commission=970, fee=30, currency="USD", status="Success", created_at=now,
        payment=shipped, match="weak", statement=statement,
    )  # fmt: skip
    missing = Difference.objects.create(
        key="stars:missing_here:stars-lost-1", provider="stars", kind="missing_here",
        occurred_at=now, currency="XTR", their_amount=250, star_transaction=tx,
    )  # fmt: skip
    weak = Difference.objects.create(
        key="apay:weak_match:900000001", provider="apay", kind="weak_match", occurred_at=now,
        currency="USD", our_amount=1000, their_amount=1000, statement_row=row, payment=shipped,
    )  # fmt: skip
    job.file.save("roles.csv", ContentFile(b"a,b\r\n"))
    promo = PromoCode.objects.create(code="ROLES10", percent=10)
    subscription = Subscription.objects.create(
        customer=customer, product=product, first_order=refunded.order,
        telegram_payment_charge_id="stars-sub-1", started_at=now, expires_at=now,
    )  # fmt: skip
    shipped.order.refresh_from_db()
    assert shipped.order.status == Order.Status.AWAITING_SHIPMENT
    return {
        "product": product.pk,
        "customer": customer.pk,
        "order": shipped.order_id,
        "orderevent": shipped.order.events.first().pk,
        "supportrequest": request.pk,
        "message": Message.objects.first().pk,
        "payment": shipped.pk,
        "refund": refund.pk,
        "dispute": dispute.pk,
        "ledgerentry": shipped.ledger_entries.first().pk,
        "exportjob": job.pk,
        "chargeconflict": conflict.pk,
        "invoiced": invoiced.pk,
        "difference": missing.pk,
        "weakdifference": weak.pk,
        "startransaction": tx.pk,
        "statementimport": statement.pk,
        "statementrow": row.pk,
        "promocode": promo.pk,
        "subscription": subscription.pk,
    }


@pytest.mark.parametrize("role", [S, F, M])
def test_each_role_is_allowed_exactly_its_pages_and_steps(client, role, objects):
    client.force_login(role_user(role))
    wrong = []
    for url, allowed in PAGES:
        status = client.get(url.format(**objects)).status_code
        expected = 200 if role in allowed else 403
        if status != expected:
            wrong.append((url, status, expected))
    assert wrong == []


def test_a_forbidden_step_posted_changes_nothing(client, objects):
    client.force_login(role_user(F))
    response = client.post(f"/admin/shop/order/{objects['invoiced']}/cancel/", {"note": "x"})
    assert response.status_code == 403
    assert Order.objects.get(pk=objects["invoiced"]).status == Order.Status.INVOICED
    client.force_login(role_user(S, "support2"))
    response = client.post(f"/admin/payments/dispute/{objects['dispute']}/win/", {})
    assert response.status_code == 403
    assert SupportRequest.objects.get(pk=objects["supportrequest"]).status == "open"


def test_the_table_covers_every_registered_admin_and_every_step():
    covered = {url.split("{")[0] for url, _ in PAGES}
    missing = []
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        if base not in covered:
            missing.append(base)
        for name, _view in getattr(model_admin, "step_views", ()):
            if not any(url.startswith(base) and url.endswith(f"/{name}/") for url, _ in PAGES):
                missing.append(f"{base}<id>/{name}/")
    assert missing == []
