"""Telegram Stars refunds: the Bot API half of a refund that payments recorded."""

from django.db.models import F

from botbridge import bot
from core import money
from payments.models import Refund
from payments.services import refunds
from shop import publish

RECONCILE_TASK = "botbridge.reconcile_stars"


def refund_stars_execute(*, refund_id: int) -> str:
    """refundStarPayment for a pending Stars refund, then record the outcome.

    Telegram refuses a second refund of the same charge with CHARGE_ALREADY_REFUNDED: a
    retried task can never refund twice. That answer is not taken as proof, though: the
    refund stays pending until the Stars reconciliation (run at once) finds Telegram's
    outgoing transaction for it, and is then completed; if Telegram has none, the
    reconciliation shows it as a refund not made. A flood wait, a server error or the network
    raise TelegramError for the task to retry; any other refusal is kept as its error.
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
        refunds.refund_await_confirmation(
            refund=refund,
            note="Telegram answered CHARGE_ALREADY_REFUNDED; waiting for the refund to appear "
            "in Telegram's Stars transactions.",
        )
        publish.publish_on_commit(RECONCILE_TASK, [()])
        return Refund.Status.PENDING
    refunds.refund_complete(refund=refund, external_reference=payment.telegram_payment_charge_id)
    return Refund.Status.COMPLETED
