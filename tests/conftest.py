import json
from collections.abc import Iterator

import pytest
from django.test import Client

from botbridge import services
from botbridge.sandbox.server import FakeTelegram
from config.celery import app
from payments.apay.fake import FakeAPay
from shop import services as shop_services
from shop.models import Order
from tests.factories import CustomerFactory, ProductFactory, UserFactory
from tests.worker import Worker, flush_broker

TOKEN = "123456:test-token"
SECRET = "test-webhook-secret"
PROVIDER_TOKEN = "apay:test-provider-token"
APAY_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with nothing cached (the dashboard caches closed days)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _idle_update_lanes():
    """In-process lane flags (tasks eager) start idle in every test."""
    from botbridge import lanes

    lanes._local.clear()
    yield
    lanes._local.clear()


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[FakeTelegram]:
    fake = FakeTelegram(TOKEN)
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def _fake_apay_server() -> Iterator[FakeAPay]:
    fake = FakeAPay(api_key=APAY_KEY, project_id="1234567", reports_token="reports-token")
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture
def fake_apay(_fake_apay_server, _fake_server, settings) -> Iterator[FakeAPay]:
    """The local A-Pay on a real port, empty for each test, told of the local Telegram's fiat
    payments; the back office is pointed at it."""
    fake = _fake_apay_server
    fake.deposits.clear()
    fake.tasks.clear()
    fake.calls.clear()
    settings.APAY_API_URL = settings.APAY_REPORTS_URL = fake.url
    settings.APAY_API_KEY = APAY_KEY
    settings.APAY_PROJECT_ID = "1234567"
    settings.APAY_REPORTS_TOKEN = "reports-token"
    settings.APAY_REPORT_POLL_SECONDS = 0.01
    _fake_server.on_fiat_payment = fake.on_telegram_payment
    yield fake
    _fake_server.on_fiat_payment = None


@pytest.fixture
def fake_telegram(_fake_server, settings) -> Iterator[FakeTelegram]:
    """The local Telegram on a real port, reset for each test; the bot is pointed at it."""
    _fake_server.reset()
    settings.TELEGRAM_API_URL = _fake_server.url
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    settings.TELEGRAM_PROVIDER_TOKEN = PROVIDER_TOKEN
    settings.TELEGRAM_SANDBOX = True
    yield _fake_server
    _fake_server.transport = None


class Webhook:
    """Telegram's side of the real webhook view, through the Django test client.

    Runs on-commit work as a commit would, makes the call a response carries (a query's
    answer) on the fake Telegram as Telegram does, and runs one dispatcher pass so updates
    stored for the worker are handled (tasks run in-process).
    """

    def __init__(self, client: Client, capture, fake: FakeTelegram):
        self.client = client
        self.capture = capture
        self.fake = fake
        self.secret = SECRET

    def post_raw(self, body, *, secret: str | None = None, content_type: str = "application/json"):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.secret if secret is None else secret}
        with self.capture(execute=True):
            response = self.client.post(
                "/telegram/webhook/", data=data, content_type=content_type, headers=headers
            )
        with self.capture(execute=True):
            services.updates_dispatch()
        return response

    def post(self, body, **kwargs):
        response = self.post_raw(body, **kwargs)
        if response.status_code == 200:
            self.fake.webhook_reply(response.content)
        return response


@pytest.fixture
def webhook(client, django_capture_on_commit_callbacks, fake_telegram) -> Webhook:
    hook = Webhook(client, django_capture_on_commit_callbacks, fake_telegram)

    def transport(update):
        response = hook.post_raw(update)
        return response.status_code, response.content

    # The fake Telegram delivers through the Django test client instead of HTTP.
    fake_telegram.transport = transport
    return hook


@pytest.fixture
def customer(db):
    return CustomerFactory()


def role_user(role: str, username: str | None = None):
    """A staff member in one of the roles (backoffice.roles), as load_demo creates them."""
    from django.contrib.auth.models import Group

    user = UserFactory(username=username or role.lower())
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def support_user(db):
    return role_user("Support")


@pytest.fixture
def finance_user(db):
    return role_user("Finance")


@pytest.fixture
def manager_user(db):
    return role_user("Manager")


@pytest.fixture
def product(db):
    return ProductFactory()


@pytest.fixture
def real_broker(settings, fake_telegram):
    """Tasks go to Redis for a worker process instead of running in this one."""
    flush_broker()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    workers: list[Worker] = []

    def start(**kwargs) -> Worker:
        worker = Worker(fake_telegram, **kwargs).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_always_eager = True
    flush_broker()


def _logged_in(client, user):
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def support_client(client, support_user):
    return _logged_in(client, support_user)


@pytest.fixture
def finance_client(client, finance_user):
    return _logged_in(client, finance_user)


@pytest.fixture
def manager_client(client, manager_user):
    return _logged_in(client, manager_user)


def post_step(client, capture, url, data):
    """Post a staff step's form as a browser would, running what it queues on commit."""
    with capture(execute=True):
        return client.post(url, data, follow=True)


@pytest.fixture
def invoiced_order(fake_telegram):
    customer = CustomerFactory(telegram_id=777001)
    fake_telegram._user({"id": customer.telegram_id})
    product = ProductFactory(sku="coins", price=500, currency="USD")
    order = shop_services.order_create(customer=customer, product=product)
    shop_services.order_transition(order=order, to_status=Order.Status.INVOICED)
    return order
