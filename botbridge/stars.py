"""Telegram Stars refunds: the Bot API half of a refund that payments recorded."""

from django.db.models import F

from botbridge import bot
from core import money
from payments.models import Refund
from payments.services import refunds


def refund_stars_execute(*, refund_id: int) -> str:
    """refundStarPayment for a pending Stars refund, then record the outcome.

    Telegram refuses a second refund of the same charge with CHARGE_ALREADY_REFUNDED, which
    therefore also means done: a retried task can never refund twice. A flood wait, a server
    error or the network raise TelegramError for the task to retry; any other refusal is
    kept on the refund as its error.
    """
    refund = Refund.objects.select_related("payment__customer").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING or refund.currency != money.STARS:
        return refund.status
    payment = refund.payment
    Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1)
    try:
        bot.refund_star_payment(
            user_id=payment.customer.telegram_id,
            telegram_payment_charge_id=payment.telegram_payment_charge_id,
        )
    except bot.TelegramError as error:
        if error.is_retryable:
            raise
        if "CHARGE_ALREADY_REFUNDED" not in error.description:
            refunds.refund_fail(refund=refund, error=f"Telegram: {error}")
            return Refund.Status.FAILED
    refunds.refund_complete(refund=refund, external_reference=payment.telegram_payment_charge_id)
    return Refund.Status.COMPLETED
