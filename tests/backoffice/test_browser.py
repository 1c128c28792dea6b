"""The admin in headless Chromium (Debian's), driven by Playwright: each role's day.

Screenshots of the dashboard and an order page are saved under docs/screenshots/.
"""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from payments import services as payment_services
from payments.models import Dispute, ExportJob, Payment, Refund
from payments.services import disputes
from shop import services as shop_services
from shop.models import Message, Order, Product, ProductOption, SupportRequest
from tests import factories
from tests.factories import CustomerFactory, ProductFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags the machine notes ask for: no sandbox as root, nothing fetched from the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package.")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # around it are ordinary blocking ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser, live_server, fake_telegram):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # No page may load anything from the internet: every request must stay on this server.
    outside = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server.url, "data:", "about:"))
            else outside.append(request.url)
        ),
    )
    page.base = live_server.url
    yield page
    context.close()
    assert outside == [], f"the admin loaded from elsewhere: {outside}"


def staff(role: str):
    user = UserFactory(username=role.lower())
    user.groups.add(Group.objects.get(name=role))
    return user


def login(page, username: str) -> None:
    page.goto(f"{page.base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "secret-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")
    # The dashboard comes first in the page: wait until the whole page (the menu after it) is in.
    page.wait_for_load_state("load")


def paid_order(fake, *, price=2500, days_ago=0, kind="topup"):
    customer = CustomerFactory(terms_version="t", terms_accepted_at=timezone.now())
    fake._user({"id": customer.telegram_id})
    product = ProductFactory(price=price, currency="USD", kind=kind, title="Gift card")
    payment = factories.paid_order(customer, product)
    if days_ago:
        from payments.models import LedgerEntry, Payment

        when = timezone.now() - timedelta(days=days_ago)
        Payment.objects.filter(pk=payment.pk).update(paid_at=when)
        LedgerEntry.objects.filter(payment=payment).update(created_at=when)
    payment.refresh_from_db()
    return payment


@pytest.mark.parametrize(
    ("role", "sees", "hidden", "forbidden"),
    [
        ("Support", ["Support requests", "Customers", "Messages"], ["Refunds", "Finance reports",
         "Ledger entries"], "/admin/payments/refund/"),
        ("Finance", ["Payments", "Refunds", "Disputes", "Ledger entries", "Finance reports"],
         ["Support requests", "Products"], "/admin/shop/product/add/"),
        ("Manager", ["Products", "Refunds", "Support requests", "Finance reports"], [],
         "/admin/auth/user/"),
    ],
)  # fmt: skip
def test_each_role_sees_its_menu_and_is_refused_the_rest(page, role, sees, hidden, forbidden):
    staff(role)
    login(page, role.lower())
    menu = page.inner_text("#content-main")
    for entry in sees:
        assert entry in menu, f"{role} should see {entry}"
    for entry in hidden:
        assert entry not in menu, f"{role} should not see {entry}"
    response = page.goto(f"{page.base}{forbidden}")
    assert response.status == 403


def test_dashboard_shows_money_queues_and_the_chart(page, fake_telegram):
    for days_ago, price in [(0, 2500), (1, 1200), (3, 4000), (8, 999), (15, 3000), (22, 1800)]:
        paid_order(fake_telegram, price=price, days_ago=days_ago)
    refunded = paid_order(fake_telegram, price=2000, days_ago=2)
    refund = payment_services.refund_request(payment=refunded, amount=800, reason="other")
    payment_services.refund_complete(refund=refund, external_reference="R-1")
    SupportRequest.objects.create(customer=refunded.customer, text="Where is my card?")
    staff("Manager")
    login(page, "manager")
    dashboard = page.inner_text("#dashboard")
    assert "today" in dashboard.lower() and "25.00 USD" in dashboard and "net" in dashboard.lower()
    assert "Open support requests" in dashboard
    assert page.locator("#dashboard-chart rect").count() > 30
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)


def test_finance_records_a_refund_wins_a_dispute_and_runs_an_export(page, fake_telegram):
    payment = paid_order(fake_telegram, price=2500)
    disputed = paid_order(fake_telegram, price=1200)
    dispute = disputes.dispute_open(
        payment=disputed,
        reason="not_received",
        amount=1200,
        evidence_due_by=timezone.now() + timedelta(hours=30),
    )
    staff("Finance")
    login(page, "finance")

    # A refund from the payment's page.
    page.goto(f"{page.base}/admin/payments/payment/{payment.pk}/change/")
    page.click("text=Record refund")
    page.fill("#id_amount", "10.00")
    page.select_option("#id_reason", "defective")
    page.fill("#id_note", "Screen cracked on arrival")
    page.click("input[name=_step]")
    page.wait_for_selector(".messagelist .success")
    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.status) == (1000, "pending")

    # The dispute queue, then the dispute to won.
    page.goto(f"{page.base}/admin/payments/dispute/")
    assert "1d 5h" in page.inner_text("#result_list") or "1d 6h" in page.inner_text("#result_list")
    page.goto(f"{page.base}/admin/payments/dispute/{dispute.pk}/change/")
    page.click("text=Won")
    page.fill("#id_notes", "The bank accepted our delivery proof")
    page.click("input[name=_step]")
    page.wait_for_selector(".messagelist .success")
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.WON

    # An export in the background: wait for its progress bar to finish.
    page.goto(f"{page.base}/admin/payments/exportjob/add/")
    today = timezone.localdate()
    page.fill("#id_since", (today - timedelta(days=1)).isoformat())
    page.fill("#id_until", today.isoformat())
    page.select_option("#id_report", "payments")
    page.click("input[name=_background]")
    page.wait_for_selector("#export-progress")
    page.wait_for_function(
        "document.querySelector('#export-bar') && document.querySelector('#export-bar').value == 100",
        timeout=30_000,
    )
    page.wait_for_selector("#export-download")
    job = ExportJob.objects.get()
    assert (job.status, job.row_count) == ("done", 2)
    with page.expect_download() as download:
        page.click("#export-download")
    content = Path(download.value.path()).read_text(encoding="utf-8")
    assert payment.telegram_payment_charge_id in content

    # The order page: its timeline and only the steps its status allows.
    page.goto(f"{page.base}/admin/shop/order/{payment.order_id}/change/")
    timeline = page.inner_text("table.order-timeline")
    assert "Payment" in timeline and "Refund" in timeline and "Bot sent" in timeline
    tools = page.text_content(".object-tools")
    assert "Record refund" in tools and "Cancel order" not in tools


def test_support_answers_a_request_and_it_reaches_telegram(page, fake_telegram):
    customer = CustomerFactory()
    fake_telegram._user({"id": customer.telegram_id})
    request = shop_services.support_request_create(customer=customer, text="My code does not work")
    staff("Support")
    login(page, "support")
    page.goto(f"{page.base}/admin/shop/supportrequest/")
    page.click(f"text=Support #{request.pk}") if page.locator(
        f"text=Support #{request.pk}"
    ).count() else page.click(f"a[href$='/supportrequest/{request.pk}/change/']")
    page.fill("#id_answer", "Here is a new code: NEW-123")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    request.refresh_from_db()
    assert request.status == "answered"
    sent = Message.objects.get(dedupe_key=f"support:{request.pk}:answer")
    assert sent.status == "sent" and "NEW-123" in sent.text
    assert any("NEW-123" in call["params"]["text"] for call in fake_telegram.calls("sendMessage"))


# --- the staff back office issue ------------------------------------------------------------


def test_a_manager_prices_a_product_as_people_write_it(page):
    staff("Manager")
    login(page, "manager")
    page.goto(f"{page.base}/admin/shop/product/add/")
    page.fill("#id_sku", "mug")
    page.fill("#id_title", "Mug")
    page.fill("#id_description", "A mug.")
    page.select_option("#id_kind", "physical")
    page.select_option("#id_currency", "USD")
    page.fill("#id_price", "12.505")
    page.click("input[name=_save]")
    assert "USD has 2 digits after the decimal point at most." in page.inner_text("#content")
    page.fill("#id_price", "12.50")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert "12.50 USD" in page.inner_text("#result_list")
    assert Product.objects.get(sku="mug").price == 1250


@pytest.fixture
def sandbox(page, fake_telegram, live_server, settings):
    """The sandbox chat page on the live server, as `make run` serves it."""
    settings.TELEGRAM_HANDLE_IN_WORKER = False
    fake_telegram.state.webhook_url = f"{live_server.url}/telegram/webhook/"
    fake_telegram.state.secret_token = settings.TELEGRAM_WEBHOOK_SECRET
    staff("Manager")
    login(page, "manager")
    return fake_telegram


def chat_send(page, text: str, lang: str = "en") -> None:
    page.goto(f"{page.base}/sandbox/?lang={lang}")
    page.fill(".tg-send input[name=text]", text)
    page.click(".tg-send button")
    page.wait_for_load_state("load")


def chat_press(page, label: str) -> None:
    page.locator("#chat button", has_text=label).last.click()
    page.wait_for_load_state("load")


def test_sandbox_size_choice_then_mark_shipped_reaches_the_chat(page, sandbox):
    tshirt = ProductFactory(
        sku="tshirt", title="Black T-shirt", title_ru="Чёрная футболка", kind="physical",
        price=149000, currency="RUB", option_name="Size", option_name_ru="Размер", stock=5,
    )  # fmt: skip
    for position, size in enumerate(["S", "M", "L", "XL"]):
        ProductOption.objects.create(product=tshirt, value=size, label=size, position=position)
    chat_send(page, "/start tshirt", "ru")
    chat_press(page, "Купить")
    assert "выберите Размер" in page.inner_text("#chat")
    chat_press(page, "M")
    chat_press(page, "Принимаю")
    page.locator("#chat .tg-pay").last.click()
    page.wait_for_load_state("load")
    assert "Чек по заказу" in page.inner_text("#chat")

    order = Order.objects.get()
    page.goto(f"{page.base}/admin/shop/order/{order.pk}/change/")
    items = page.inner_text("#items-group")
    assert "Size: M" in items and "1,490.00 RUB" in items
    timeline = page.inner_text("table.order-timeline")
    assert "Payment" in timeline and "Bot sent" in timeline
    page.click(".object-tools >> text=Mark shipped")
    page.fill("#id_carrier", "DHL")
    page.fill("#id_tracking_number", "JD0123")
    page.fill("#id_tracking_url", "https://dhl.example/JD0123")
    page.click("input[name=_step]")
    page.wait_for_selector(".messagelist .success")
    assert "Shipped with DHL, tracking JD0123" in page.inner_text("table.order-timeline")
    page.screenshot(path=str(SCREENSHOTS / "order.png"), full_page=True)

    page.goto(f"{page.base}/sandbox/?lang=ru")
    chat = page.inner_text("#chat")
    assert "Трек-номер: JD0123" in chat and "https://dhl.example/JD0123" in chat
    page.screenshot(path=str(SCREENSHOTS / "sandbox.png"), full_page=True)


def test_sandbox_declined_payment_then_a_successful_one(page, sandbox):
    ProductFactory(sku="coins", title="500 coins", price=500, currency="USD")
    chat_send(page, "/start coins")
    chat_press(page, "Buy")
    chat_press(page, "I agree")
    page.locator("#chat .tg-decline").last.click()
    page.wait_for_load_state("load")
    assert "declined" in page.inner_text("#chat")
    assert not Payment.objects.exists()
    chat_send(page, "/catalog")
    assert "Catalog" in page.inner_text("#chat")
    page.locator("#chat .tg-pay").last.click()
    page.wait_for_load_state("load")
    assert "Receipt for order" in page.inner_text("#chat")
    assert Payment.objects.count() == 1


def test_sandbox_cart_with_demo10_and_a_subscription_renewed_from_the_demo_data(page, sandbox):
    """What `make run` offers: load_demo's catalog, DEMO10 and the Members' club."""
    from django.core.management import call_command

    from shop.models import PromoCode, Subscription

    call_command("load_demo")
    chat_send(page, "/catalog")
    chat_press(page, "Buy Django payments e-book")  # first purchase: the terms come first
    chat_press(page, "I agree")
    page.locator("#chat button", has_text="Add to cart").nth(4).click()  # the e-book
    page.wait_for_load_state("load")
    chat_press(page, "+")
    chat_send(page, "/start coins-500")
    chat_press(page, "Add to cart")
    chat_send(page, "/promo DEMO10")
    chat = page.inner_text("#chat")
    assert "Promo code DEMO10: −3.00 USD" in chat and "Total: 27.00 USD" in chat
    chat_press(page, "Check out · 27.00 USD")
    assert "Your cart became order" in page.inner_text("#chat")
    page.locator("#chat .tg-pay").last.click()
    page.wait_for_load_state("load")
    chat = page.inner_text("#chat")
    assert "Promo code DEMO10: −3.00 USD" in chat.split("Receipt for order")[-1]
    assert PromoCode.objects.get(code="DEMO10").times_used == 1

    chat_send(page, "/start club-monthly")
    chat_press(page, "Subscribe: Members' club")
    page.locator("#chat button.tg-pay", has_text="Subscribe · 150 XTR").last.click()
    page.wait_for_load_state("load")
    assert "Your subscription runs until" in page.inner_text("#chat")
    page.click("text=30 days pass")
    page.wait_for_load_state("load")
    assert "Telegram renewed 1 subscription(s)." in page.inner_text(".messagelist")
    subscription = Subscription.objects.get(customer__telegram_id=700000001)
    assert subscription.renewals == 1
    chat_send(page, "/subscriptions")
    assert "renews on" in page.inner_text("#chat")
    page.screenshot(path=str(SCREENSHOTS / "sandbox-cart-subscription.png"), full_page=True)


def test_sandbox_after_a_restart_keeps_ids_unique(page, sandbox, settings, live_server):
    import time

    from botbridge.sandbox.server import FakeTelegram

    ProductFactory(sku="coins", title="500 coins", price=500, currency="USD")
    for run in range(2):  # the second is `make run` started again: a new local Telegram
        fake = FakeTelegram(
            settings.TELEGRAM_BOT_TOKEN, f"{live_server.url}/telegram/webhook/",
            settings.TELEGRAM_WEBHOOK_SECRET, id_base=int(time.time() * 1000),
        )  # fmt: skip
        fake.serve()
        settings.TELEGRAM_API_URL = fake.url
        try:
            chat_send(page, "/start coins")
            chat_press(page, "Buy")
            if run == 0:
                chat_press(page, "I agree")
            page.locator("#chat .tg-pay").last.click()
            page.wait_for_load_state("load")
            assert "Receipt for order" in page.inner_text("#chat")
        finally:
            fake.stop()
    assert Payment.objects.count() == 2
    assert Order.objects.filter(status="fulfilled").count() == 2


def test_a_manager_enrols_an_authenticator_and_signs_in_with_its_code(page, settings):

    from django_otp.oath import totp

    settings.STAFF_REQUIRE_2FA = True
    staff("Manager")
    page.goto(f"{page.base}/admin/login/?next=/admin/")
    page.fill("#id_username", "manager")
    page.fill("#id_password", "secret-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#totp-qr svg")
    assert "Set yours up to continue" in page.inner_text("#content")
    key = bytes.fromhex(page.get_attribute("#totp-secret", "data-hex"))
    page.fill("#id_token", f"{totp(key):06d}")
    page.click("#twofactor-form input[type=submit]")
    page.wait_for_selector("#recovery-codes")
    assert len(page.locator("#recovery-codes li").all()) == 10
    page.screenshot(path=str(SCREENSHOTS / "two-factor.png"), full_page=True)
    page.click("text=Continue to the dashboard")
    page.wait_for_selector("#dashboard")

    page.context.clear_cookies()  # a new day, a new sign-in: password and the app's code
    page.goto(f"{page.base}/admin/login/?next=/admin/")
    page.fill("#id_username", "manager")
    page.fill("#id_password", "secret-pass-123")
    page.fill("#id_otp_token", f"{totp(key, drift=1):06d}")
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")
    assert "two-factor" not in page.inner_text("#dashboard").lower()
