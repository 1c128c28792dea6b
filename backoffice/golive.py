"""The go-live check: is this shop ready to take real money, and is it quietly failing?

In the order of the provider's live checklist: the bot talks to Telegram through a webhook
with a secret; payments use a live provider token; the bot answers /terms, /support and
(selling for Stars) /paysupport; the terms are set; support answers; backups exist and were
verified; staff sign in with two factors; the production settings pass Django's checks.
Each item is ok, a warning or a failure, with how to fix it. `manage.py golive_check` exits
non-zero on any failure; the admin shows the same list.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.utils import timezone

from backoffice import backups, twofactor
from botbridge import bot
from botbridge.handlers import COMMAND_DESCRIPTIONS
from shop.models import Product, SupportRequest

OK, WARNING, FAILURE = "ok", "warning", "failure"
NEEDED_UPDATES = {"message", "callback_query", "pre_checkout_query", "shipping_query"}
SUPPORT_WAIT = timedelta(hours=24)


@dataclass
class Item:
    name: str
    state: str
    detail: str
    fix: str = ""


def golive_items() -> list[Item]:
    return [
        *_webhook(),
        _provider_token(),
        *_commands(),
        _terms(),
        _support(),
        _backup(),
        _two_factor(),
        _deploy_checks(),
    ]


def _webhook() -> list[Item]:
    name = "Webhook"
    try:
        info = bot.get_webhook_info()
    except bot.TelegramError as error:
        return [Item(name, FAILURE, f"Telegram could not be asked: {error}",
                     "Check TELEGRAM_BOT_TOKEN and TELEGRAM_API_URL.")]  # fmt: skip
    items = []
    wanted = settings.TELEGRAM_WEBHOOK_URL
    if not info.get("url"):
        items.append(Item(name, FAILURE, "No webhook is registered.",
                          "Run `manage.py set_telegram_webhook`."))  # fmt: skip
    elif wanted and info["url"] != wanted:
        items.append(Item(name, FAILURE, f"Registered at {info['url']}, not at {wanted}.",
                          "Run `manage.py set_telegram_webhook`."))  # fmt: skip
    else:
        items.append(Item(name, OK, f"Registered at {info['url']}."))
    if not settings.TELEGRAM_WEBHOOK_SECRET:
        items.append(Item("Webhook secret", FAILURE, "TELEGRAM_WEBHOOK_SECRET is empty.",
                          "Set a long random secret, then run `set_telegram_webhook`."))  # fmt: skip
    else:
        items.append(Item("Webhook secret", OK, "Set; Telegram sends it with every update."))
    missing = NEEDED_UPDATES - set(info.get("allowed_updates") or NEEDED_UPDATES)
    items.append(
        Item("Update kinds", FAILURE, f"Telegram does not send: {', '.join(sorted(missing))}.",
             "Run `manage.py set_telegram_webhook`.")
        if missing else Item("Update kinds", OK, "Pre-checkout, shipping, messages, buttons.")
    )  # fmt: skip
    error_at = info.get("last_error_date")
    if error_at and timezone.now().timestamp() - error_at < 3600:
        items.append(Item("Delivery", WARNING,
                          f"Telegram failed to deliver in the last hour: {info.get('last_error_message')}",
                          "Check that the webhook URL answers over HTTPS."))  # fmt: skip
    else:
        items.append(Item("Delivery", OK, "No delivery error in the last hour."))
    pending = info.get("pending_update_count", 0)
    items.append(
        Item("Backlog", WARNING, f"{pending} updates wait at Telegram.",
             "Check the web processes and the dispatcher.")
        if pending > 10 else Item("Backlog", OK, f"{pending} updates waiting.")
    )  # fmt: skip
    return items


def _provider_token() -> Item:
    name = "Payment provider"
    token = settings.TELEGRAM_PROVIDER_TOKEN
    if not token:
        return Item(name, FAILURE, "No A-Pay provider token: card invoices cannot be sent.",
                    "Connect A-Pay in @BotFather (Payments) and set TELEGRAM_PROVIDER_TOKEN.")  # fmt: skip
    if settings.TELEGRAM_SANDBOX:
        return Item(name, WARNING, "The local sandbox: payments are demo money.",
                    "Set TELEGRAM_BOT_TOKEN and a LIVE provider token.")  # fmt: skip
    if ":TEST:" in token.upper():
        return Item(name, WARNING, "A TEST provider token: payments are test money, not counted.",
                    "Switch to the LIVE token from @BotFather when ready.")  # fmt: skip
    return Item(name, OK, "A LIVE provider token.")


def _commands() -> list[Item]:
    wanted = {"terms", "support"}
    if Product.objects.filter(currency="XTR", is_active=True).exists():
        wanted.add("paysupport")  # Telegram's terms for Stars
    try:
        menu = set(bot.get_commands(language_code=None))
    except bot.TelegramError as error:
        return [Item("Command menu", FAILURE, f"Telegram could not be asked: {error}")]
    missing = wanted - menu
    if missing:
        return [Item("Command menu", FAILURE,
                     f"The menu lacks {', '.join('/' + c for c in sorted(missing))}.",
                     "Run `manage.py sync_bot_commands`.")]  # fmt: skip
    offered = {name for name, _ in COMMAND_DESCRIPTIONS["en"]}
    return [Item("Command menu", OK, f"Synced: {', '.join('/' + c for c in sorted(wanted))}"
                 + ("" if offered <= menu else " (some other commands are not in it)."))]  # fmt: skip


def _terms() -> Item:
    if not settings.SHOP_TERMS_VERSION:
        return Item("Terms of sale", FAILURE, "No terms version.", "Set SHOP_TERMS_VERSION.")
    return Item("Terms of sale", OK, f"Version {settings.SHOP_TERMS_VERSION}, shown at /terms.")


def _support() -> Item:
    waiting = SupportRequest.objects.filter(
        status=SupportRequest.Status.OPEN, created_at__lt=timezone.now() - SUPPORT_WAIT
    ).count()
    if waiting:
        return Item("Support", WARNING, f"{waiting} request(s) unanswered for over 24 hours.",
                    "Answer them from Support requests.")  # fmt: skip
    return Item("Support", OK, "No request waits over 24 hours.")


def _backup() -> Item:
    last = backups.last_good_backup()
    if last is None:
        return Item("Backups", FAILURE, "No verified backup.", "Run `manage.py backup`; "
                    "beat takes one nightly.")  # fmt: skip
    if backups.backup_is_overdue():
        return Item("Backups", FAILURE, f"The last verified backup is from "
                    f"{timezone.localtime(last.created_at):%Y-%m-%d %H:%M}.",
                    "Check the beat and the backup storage.")  # fmt: skip
    return Item("Backups", OK, f"Verified, {timezone.localtime(last.created_at):%Y-%m-%d %H:%M}.")


def _two_factor() -> Item:
    staff = get_user_model().objects.filter(is_staff=True, is_active=True)
    without = [user.get_username() for user in staff if not twofactor.is_enrolled(user)]
    if without:
        return Item("Staff two-factor", FAILURE, f"Without two-factor login: {', '.join(without)}.",
                    "Each of them signs in and turns it on (the dashboard asks).")  # fmt: skip
    if not settings.STAFF_REQUIRE_2FA:
        return Item("Staff two-factor", WARNING, "Every staff user has it, but it is not required.",
                    "Set STAFF_REQUIRE_2FA=true.")  # fmt: skip
    return Item("Staff two-factor", OK, "Required, and every staff user has it.")


def _deploy_checks() -> Item:
    """Django's `check --deploy`, each finding by its id and first sentence."""
    found = [
        message
        for message in checks.run_checks(include_deployment_checks=True)
        if message.level >= checks.WARNING and not message.is_silenced()
    ]
    if found:
        lines = "; ".join(f"{m.id}: {str(m.msg).split('. ')[0].rstrip('.')}" for m in found)
        return Item("Production settings", FAILURE, lines[:900],
                    "Run with the production settings and their environment.")  # fmt: skip
    return Item("Production settings", OK, "`check --deploy` reports nothing.")
