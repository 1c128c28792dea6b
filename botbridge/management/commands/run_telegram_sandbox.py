import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from botbridge.sandbox.server import FakeTelegram
from payments.apay.fake import FakeAPay
from payments.models import Payment, Refund
from shop.models import PaymentMode


class Command(BaseCommand):
    help = (
        "Serve the local Telegram (a fake Bot API) that the bot uses when no token is set, "
        "and the local A-Pay (deposit-info, Reports API) that records its fiat payments."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8081)
        parser.add_argument("--apay-port", type=int, default=8082)
        parser.add_argument(
            "--webhook-url",
            default=settings.TELEGRAM_WEBHOOK_URL or "http://127.0.0.1:8000/telegram/webhook/",
        )

    def handle(self, *args, port, apay_port, webhook_url, **options):
        if not settings.TELEGRAM_SANDBOX:
            raise CommandError(
                "A real TELEGRAM_BOT_TOKEN is set: the sandbox is for local work only."
            )
        fake = FakeTelegram(
            settings.TELEGRAM_BOT_TOKEN,
            webhook_url,
            settings.TELEGRAM_WEBHOOK_SECRET,
            # Ids above any earlier run's: a restarted `make run` keeps them unique.
            id_base=int(time.time() * 1000),
        )
        apay = FakeAPay(
            api_key=settings.APAY_API_KEY,
            project_id=settings.APAY_PROJECT_ID,
            reports_token=settings.APAY_REPORTS_TOKEN,
        )
        fake.on_fiat_payment = apay.on_telegram_payment
        seeded = _seed_from_books(fake, apay)
        try:
            fake.serve(port=port)
            apay.serve(port=apay_port)
        except OSError as error:
            raise CommandError(f"Cannot listen on 127.0.0.1: {error}") from error
        self.stdout.write(f"Local Telegram on {fake.url}, delivering updates to {webhook_url}")
        self.stdout.write(f"Local A-Pay on {apay.url}; {seeded}")
        threading.Event().wait()


def _seed_from_books(fake: FakeTelegram, apay: FakeAPay) -> str:
    """What Telegram and A-Pay would hold already: the payments (and Stars refunds) of the
    last 90 days in this database (the demo's, and earlier sandbox runs'), so that the
    reconciliation of a fresh `make run` starts from books that agree."""
    since = timezone.now() - timedelta(days=90)
    try:
        payments = list(
            Payment.objects.filter(paid_at__gte=since)
            .exclude(mode=PaymentMode.TEST)
            .select_related("customer")
            .order_by("paid_at", "pk")
        )
        refunds = list(
            Refund.objects.filter(currency="XTR", status=Refund.Status.COMPLETED,
                                  completed_at__gte=since).select_related("payment__customer")
        )  # fmt: skip
    except DatabaseError:
        return "no database yet: nothing seeded"
    moves = []
    for p in payments:
        user = {"id": p.customer.telegram_id, "is_bot": False,
                "first_name": p.customer.first_name or "Customer"}  # fmt: skip
        if p.provider == Payment.Provider.STARS:
            moves.append((p.paid_at, {"id": p.telegram_payment_charge_id, "amount": p.amount,
                          "source": {"type": "user", "transaction_type": "invoice_payment",
                                     "user": user, "invoice_payload": ""}}))  # fmt: skip
        elif p.provider_payment_charge_id:
            apay.deposit_add(order_id=p.provider_payment_charge_id, amount=p.amount,
                             currency=p.currency, created_at=p.paid_at,
                             custom_user_id=str(p.customer.telegram_id))  # fmt: skip
    for r in refunds:
        user = {"id": r.payment.customer.telegram_id, "is_bot": False, "first_name": "Customer"}
        moves.append((r.completed_at, {"id": r.payment.telegram_payment_charge_id,
                      "amount": r.amount, "receiver": {"type": "user",
                      "transaction_type": "invoice_payment", "user": user}}))  # fmt: skip
        fake.state.refunded_charges.add(r.payment.telegram_payment_charge_id)
    for when, tx in sorted(moves, key=lambda m: m[0]):
        fake.star_transaction_add({**tx, "date": int(when.timestamp())})
    return f"{len(moves)} Stars transactions and {len(apay.deposits)} A-Pay deposits from the books"
