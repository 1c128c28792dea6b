"""Refunds, disputes and chargebacks: the services and every admin step, refusals included."""

import csv
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.utils import timezone

from botbridge import bot, stars
from core.errors import DomainError
from payments import services as payment_services
from payments.models import Dispute, LedgerEntry, Refund
from payments.selectors import customer_balances
from payments.services import disputes
from shop import outbox
from shop.models import Customer, Message, Order, OrderEvent
from tests.conftest import post_step
from tests.factories import CustomerFactory, ProductFactory, UserFactory, paid_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def pay(fake_telegram, django_capture_on_commit_callbacks):
    """A paid and credited order, the way the bot makes one: (payment, order)."""

    def make(*, price=1000, currency="USD", kind="digital", language="en", charge=None):
        customer = CustomerFactory(
            language_code=language, terms_version="t", terms_accepted_at=timezone.now()
        )
        fake_telegram._user({"id": customer.telegram_id})  # the customer has started the bot
        product = ProductFactory(price=price, currency=currency, kind=kind)
        if kind == "digital":
            product.digital_items.create(content=f"CODE-{product.pk}")
        with django_capture_on_commit_callbacks(execute=True):
            outbox.inbound_record(customer=customer, chat_id=customer.telegram_id, text="/buy")
            payment = paid_order(customer, product, charge=charge)
        payment.refresh_from_db()
        order = Order.objects.get(pk=payment.order_id)
        assert payment.credited_at and order.status == Order.Status.FULFILLED
        return payment, order

    return make


@pytest.fixture
def finance(finance_client):
    return finance_client


# --- refunds ------------------------------------------------------------------------------


def test_apay_refund_recorded_in_admin_then_confirmed_with_the_provider_reference(
    pay, finance, fake_telegram, django_capture_on_commit_callbacks
):
    payment, order = pay(price=1000, language="ru")
    page = finance.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert "Record refund" in page.content.decode()
    # The order's page leads to the same step.
    order_page = finance.get(f"/admin/shop/order/{order.pk}/change/").content.decode()
    assert f"/admin/payments/payment/{payment.pk}/refund/" in order_page

    response = post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "4.00", "reason": "defective", "note": "Cracked screen"},
    )
    assert "Make the refund at A-Pay" in response.content.decode()
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.author) == (400, "pending", finance.user)
    payment.refresh_from_db()
    assert payment.refunded_amount == 400
    assert not LedgerEntry.objects.filter(kind="refund").exists()  # not made yet

    # Confirming needs A-Pay's reference.
    response = post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/refund/{refund.pk}/confirm/",
        {"external_reference": " "},
    )
    assert "This field is required" in response.content.decode()
    refund.refresh_from_db()
    assert refund.status == "pending"

    post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/refund/{refund.pk}/confirm/",
        {"external_reference": "APAY-R-77"},
    )
    refund.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.external_reference) == ("completed", "APAY-R-77")
    assert order.status == "partially_refunded"
    entries = {e.kind: e.amount for e in LedgerEntry.objects.filter(refund=refund)}
    assert entries == {"refund": -400, "adjustment": 400}
    assert customer_balances(customer=payment.customer) == {}  # credit, purchase, back out
    assert OrderEvent.objects.filter(order=order, actor=finance.user, data__refund_id=refund.pk)
    notice = Message.objects.get(dedupe_key=f"refund:{refund.pk}:notice")
    assert "Мы вернули 4,00 USD" in notice.text and "дефектом" in notice.text
    assert notice.status == "sent"

    # Confirming again is refused and changes nothing.
    response = post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/refund/{refund.pk}/confirm/",
        {"external_reference": "APAY-R-78"},
    )
    assert "not pending" in response.content.decode()
    refund.refresh_from_db()
    assert refund.external_reference == "APAY-R-77"
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


def test_refund_above_what_is_left_is_refused_in_the_admin(
    pay, finance, django_capture_on_commit_callbacks
):
    payment, _ = pay(price=1000)
    payment_services.refund_create(payment=payment, amount=700, reason="other")
    response = post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "3.01", "reason": "other"},
    )
    assert "At most 3.00 USD" in response.content.decode()
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert payment.refunded_amount == 700


def test_stars_refund_is_made_by_the_worker_through_refund_star_payment(
    pay, finance, fake_telegram, django_capture_on_commit_callbacks
):
    payment, order = pay(price=250, currency="XTR", kind="topup")
    response = post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "100", "reason": "customer_request"},
    )
    assert "refunded whole" in response.content.decode()
    assert not Refund.objects.exists()

    post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "250", "reason": "customer_request"},
    )
    refund = Refund.objects.get()
    assert refund.status == "completed"
    assert refund.external_reference == payment.telegram_payment_charge_id
    call = fake_telegram.calls("refundStarPayment")[0]["params"]
    assert call["telegram_payment_charge_id"] == payment.telegram_payment_charge_id
    assert int(call["user_id"]) == payment.customer.telegram_id
    order.refresh_from_db()
    assert order.status == "refunded"
    assert customer_balances(customer=payment.customer) == {}

    # The task delivered again (a redelivery) does not refund twice.
    assert stars.refund_stars_execute(refund_id=refund.pk) == "completed"
    assert len(fake_telegram.calls("refundStarPayment")) == 1


def test_a_failed_stars_refund_stays_visible_and_can_be_retried_or_cancelled(
    pay, finance, fake_telegram, django_capture_on_commit_callbacks
):
    payment, _ = pay(price=250, currency="XTR", kind="topup", charge="bad-charge-1")
    with django_capture_on_commit_callbacks(execute=True):
        refund = payment_services.refund_create(payment=payment, amount=250, reason="other")
    refund.refresh_from_db()
    assert refund.status == "failed"
    assert "CHARGE_ID_INVALID" in refund.error
    listing = finance.get("/admin/payments/refund/?status__exact=failed").content.decode()
    assert "CHARGE_ID_INVALID" in listing

    # Retrying runs the task again (it fails the same way here) ...
    post_step(
        finance,
        django_capture_on_commit_callbacks,
        "/admin/payments/refund/",
        {"action": "retry", "_selected_action": [refund.pk]},
    )
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == ("failed", 2)
    # ... and cancelling gives the amount back to the payment.
    post_step(
        finance,
        django_capture_on_commit_callbacks,
        "/admin/payments/refund/",
        {"action": "cancel", "_selected_action": [refund.pk]},
    )
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "cancelled"
    assert payment.refunded_amount == 0
    # A completed or cancelled refund cannot be retried.
    response = post_step(
        finance,
        django_capture_on_commit_callbacks,
        "/admin/payments/refund/",
        {"action": "retry", "_selected_action": [refund.pk]},
    )
    assert "not failed" in response.content.decode()


def test_telegram_flood_wait_on_a_stars_refund_is_retried_not_failed(pay, fake_telegram):
    payment, _ = pay(price=250, currency="XTR", kind="topup")
    refund = payment_services.refund_request(payment=payment, amount=250, reason="other")
    fake_telegram.fail(
        method="refundStarPayment", error_code=429, description="Too Many Requests", retry_after=1
    )
    with pytest.raises(bot.TelegramError) as flood:
        stars.refund_stars_execute(refund_id=refund.pk)
    assert (flood.value.code, flood.value.retry_after, flood.value.is_retryable) == (429, 1.0, True)
    refund.refresh_from_db()
    assert refund.status == "pending"
    assert stars.refund_stars_execute(refund_id=refund.pk) == "completed"


# --- disputes -----------------------------------------------------------------------------


def open_dispute(client, capture, payment, **extra):
    data = {
        "amount": "10.00",
        "reason": "fraudulent",
        "provider_reference": "CB-1",
        "evidence_due_by": (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%d %H:%M"),
        **extra,
    }
    return post_step(client, capture, f"/admin/payments/payment/{payment.pk}/dispute/", data)


def test_dispute_opened_evidence_submitted_and_won(
    pay, finance, django_capture_on_commit_callbacks
):
    payment, order = pay(price=1000)
    response = open_dispute(finance, django_capture_on_commit_callbacks, payment, amount="10.01")
    assert "At most 10.00 USD" in response.content.decode()
    assert not Dispute.objects.exists()

    open_dispute(finance, django_capture_on_commit_callbacks, payment, assignee=finance.user.pk)
    dispute = Dispute.objects.get()
    order.refresh_from_db()
    assert (dispute.status, dispute.amount, order.status) == ("open", 1000, "disputed")
    # A refund while the dispute is open is refused.
    with pytest.raises(DomainError, match="open dispute"):
        payment_services.refund_create(payment=payment, amount=100, reason="other")

    url = f"/admin/payments/dispute/{dispute.pk}/"
    post_step(
        finance,
        django_capture_on_commit_callbacks,
        url + "submit-evidence/",
        {"notes": "Sent logs"},
    )
    dispute.refresh_from_db()
    assert dispute.status == "under_review" and dispute.evidence_submitted_at
    # Submitting twice is refused, nothing changes.
    response = post_step(finance, django_capture_on_commit_callbacks, url + "submit-evidence/", {})
    assert "cannot submit evidence" in response.content.decode()

    post_step(finance, django_capture_on_commit_callbacks, url + "win/", {"notes": "Bank agreed"})
    dispute.refresh_from_db()
    order.refresh_from_db()
    assert dispute.status == "won" and order.status == "fulfilled"
    assert "Sent logs" in dispute.notes and "Bank agreed" in dispute.notes
    assert not LedgerEntry.objects.filter(dispute=dispute).exists()
    steps = list(
        OrderEvent.objects.filter(order=order, data__dispute_id=dispute.pk).values_list(
            "message", "actor"
        )
    )
    assert [m.split(":")[0].split(" (")[0] for m, _ in steps] == [
        f"Dispute #{dispute.pk} opened",
        f"Dispute #{dispute.pk}",
        f"Dispute #{dispute.pk} won",
    ]
    assert {actor for _, actor in steps} == {finance.user.pk}
    # Won is final.
    response = post_step(finance, django_capture_on_commit_callbacks, url + "lose/", {"fee": "0"})
    assert "cannot lost it" in response.content.decode() or "cannot" in response.content.decode()
    dispute.refresh_from_db()
    assert dispute.status == "won"


@pytest.mark.parametrize("step", ["lose", "accept"])
def test_lost_or_accepted_dispute_books_the_chargeback(
    pay, finance, django_capture_on_commit_callbacks, step
):
    payment, order = pay(price=1000)
    open_dispute(finance, django_capture_on_commit_callbacks, payment)
    dispute = Dispute.objects.get()
    post_step(
        finance,
        django_capture_on_commit_callbacks,
        f"/admin/payments/dispute/{dispute.pk}/{step}/",
        {"fee": "15.00", "block_customer": "on", "notes": "No evidence"},
    )
    dispute.refresh_from_db()
    order.refresh_from_db()
    customer = Customer.objects.get(pk=payment.customer_id)
    assert dispute.status == {"lose": "lost", "accept": "accepted"}[step]
    assert order.status == "charged_back"
    assert customer.is_flagged and customer.is_blocked
    entries = dict(LedgerEntry.objects.filter(dispute=dispute).values_list("kind", "amount"))
    assert entries == {"chargeback": -1000, "adjustment": 1000, "fee": -1500}
    # The customer's balance: the credit was spent on the goods, the chargeback took the
    # money back and the purchase was reversed: nothing left, and the fee is not theirs.
    assert customer_balances(customer=customer) == {}
    assert OrderEvent.objects.filter(
        order=order, to_status="charged_back", actor=finance.user
    ).exists()
    # No refund after a chargeback; no second chargeback either.
    with pytest.raises(DomainError):
        payment_services.refund_create(payment=payment, amount=100, reason="other")
    with pytest.raises(DomainError):
        disputes.dispute_accept(dispute=dispute)
    assert LedgerEntry.objects.filter(dispute=dispute).count() == 3


def test_dispute_steps_need_the_permission(pay, client, django_capture_on_commit_callbacks):
    payment, _ = pay(price=1000)
    dispute = disputes.dispute_open(
        payment=payment,
        reason="fraudulent",
        amount=1000,
        evidence_due_by=timezone.now() + timedelta(days=3),
    )
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_dispute"),
        Permission.objects.get(codename="view_payment"),
    )
    client.force_login(viewer)
    assert client.post(f"/admin/payments/dispute/{dispute.pk}/win/", {}).status_code == 403
    assert client.post(f"/admin/payments/payment/{payment.pk}/refund/", {}).status_code == 403
    dispute.refresh_from_db()
    assert dispute.status == "open"
    page = client.get(f"/admin/payments/dispute/{dispute.pk}/change/").content.decode()
    assert "Download evidence pack" in page and "Accept chargeback" not in page


def test_hourly_reminders_flag_due_soon_and_overdue_and_email_the_assignee(pay):
    assignee = UserFactory(username="agent", email="agent@example.com")
    now = timezone.now()
    made = {}
    for name, due in [("soon", 24), ("later", 100), ("overdue", -2), ("reviewed", 10)]:
        payment, _ = pay(price=1000)
        made[name] = disputes.dispute_open(
            payment=payment,
            reason="not_received",
            amount=500,
            evidence_due_by=now + timedelta(days=10),
            assignee=assignee,
        )
        Dispute.objects.filter(pk=made[name].pk).update(
            evidence_due_by=now + timedelta(hours=due), is_due_soon=False, is_overdue=False
        )
    disputes.dispute_submit_evidence(dispute=made["reviewed"])

    assert disputes.disputes_remind(now=now) == {"due_soon": 1, "overdue": 1}
    state = {k: Dispute.objects.get(pk=d.pk) for k, d in made.items()}
    assert state["soon"].is_due_soon and not state["soon"].is_overdue
    assert state["overdue"].is_overdue
    assert not state["later"].is_due_soon
    assert not state["reviewed"].is_due_soon
    subjects = sorted(m.subject for m in mail.outbox)
    assert len(subjects) == 2 and all(m.to == ["agent@example.com"] for m in mail.outbox)
    assert any("OVERDUE" in s for s in subjects) and any(
        "due 1d 0h from now" in s for s in subjects
    )
    # An hour later nobody is told twice.
    assert disputes.disputes_remind(now=now + timedelta(hours=1)) == {"due_soon": 0, "overdue": 0}
    assert len(mail.outbox) == 2


def test_dispute_queue_is_sorted_by_due_date_with_time_left(pay, finance):
    now = timezone.now()
    for hours in (72, 5):
        payment, _ = pay(price=1000)
        disputes.dispute_open(
            payment=payment,
            reason="other",
            amount=100,
            evidence_due_by=now + timedelta(hours=hours),
        )
    page = finance.get("/admin/payments/dispute/").content.decode()
    assert page.index("4h 59m") < page.index("2d 23h")


def test_evidence_pack_downloads_in_one_click(pay, finance, fake_telegram):
    payment, order = pay(price=1000)
    dispute = disputes.dispute_open(
        payment=payment,
        reason="not_received",
        amount=1000,
        evidence_due_by=timezone.now() + timedelta(days=5),
    )
    response = finance.get(f"/admin/payments/dispute/{dispute.pk}/evidence/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    pack = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(pack.namelist()) == ["evidence.json", "summary.txt", "transcript.csv"]
    facts = json.loads(pack.read("evidence.json"))
    assert facts["payment"]["telegram_payment_charge_id"] == payment.telegram_payment_charge_id
    assert facts["payment"]["provider_payment_charge_id"] == payment.provider_payment_charge_id
    assert facts["customer"]["terms_version"] == "t" and facts["customer"]["terms_accepted_at"]
    assert facts["order"]["reference"] == order.reference
    assert facts["order"]["items"][0]["quantity"] == 1
    assert any("digital item" in d["what"] for d in facts["delivery"])
    transcript = pack.read("transcript.csv").decode()
    assert ",in," in transcript and ",out," in transcript and "/buy" in transcript
    assert order.reference in pack.read("summary.txt").decode()


# --- outbox ---------------------------------------------------------------------------------


def test_evidence_transcript_neutralises_formulas_the_customer_wrote(pay, finance, fake_telegram):
    payment, order = pay(price=1000)
    customer = payment.customer
    outbox.inbound_record(
        customer=customer, chat_id=customer.telegram_id, text="=cmd|' /C calc'!A0"
    )
    outbox.inbound_record(customer=customer, chat_id=customer.telegram_id, text="@SUM(1+1)")
    dispute = disputes.dispute_open(
        payment=payment, reason="fraudulent", amount=1000,
        evidence_due_by=timezone.now() + timedelta(days=5),
    )  # fmt: skip
    response = finance.get(f"/admin/payments/dispute/{dispute.pk}/evidence/")
    rows = list(
        csv.reader(
            io.StringIO(
                zipfile.ZipFile(io.BytesIO(response.content)).read("transcript.csv").decode()
            )
        )
    )
    texts = [row[3] for row in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in texts and "'@SUM(1+1)" in texts
    assert not any(text.startswith(("=", "@", "+", "-")) for text in texts)
