"""What the bot says, in English and Russian. Chosen per customer from Telegram's language_code."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "welcome": (
            "Hello, {name}! This is {shop}.\n\n"
            "/catalog — browse and buy\n/orders — your orders\n/balance — your balance\n"
            "/terms — terms of sale\n/support — ask us anything\n/paysupport — help with a payment\n"
            "/help — this list"
        ),
        "help": (
            "/catalog — browse and buy\n/orders — your recent orders\n/balance — your balance\n"
            "/terms — terms of sale and refunds\n/support <question> — write to our team\n"
            "/stop_reminders — no reminders about unpaid orders\n/start — start over"
        ),
        "catalog_header": "Catalog, page {page} of {pages}:",
        "catalog_empty": "Nothing is on sale right now. Please come back later.",
        "catalog_line": "• {title} — {price}\n  {description}",
        "buy_button": "Buy {title} · {price}",
        "prev": "« Back",
        "next": "More »",
        "product_missing": "Sorry, that product is not available.",
        "product_card": "{title} — {price}\n\n{description}",
        "terms_prompt": "Before your first purchase, please read and accept our terms:",
        "terms": (
            "Terms of sale (version {version})\n\n"
            "1. Prices are shown with their currency before you pay; you pay through Telegram.\n"
            "2. Top-ups are credited to your balance right after payment; digital items are "
            "delivered in this chat; physical goods are shipped to the address you give.\n"
            "3. Refunds: write to /support within 14 days. Approved refunds go back to the "
            "card or Stars balance you paid with.\n"
            "4. Support answers in this chat, usually within one business day."
        ),
        "terms_accepted": "Thank you, terms accepted (version {version}).",
        "terms_already": "You accepted these terms (version {version}) on {date}.",
        "agree_button": "I agree",
        "orders_empty": "You have no orders yet. Try /catalog.",
        "orders_header": "Your recent orders:",
        "orders_line": "{reference} · {date} · {total} · {status}",
        "balance_empty": "Your balance is empty.",
        "balance_header": "Your balance:",
        "support_prompt": "Please write your question in one message and send it. Our team will answer here.",
        "paysupport": (
            "Help with a payment: write what happened in one message (the order number helps) "
            "and our team will answer here. Refunds follow our /terms."
        ),
        "support_received": "Thank you, we received your request #{number}. We will answer here.",
        "support_answer": "Answer from support to your request #{number}:\n\n{answer}",
        "unknown": "Sorry, I did not understand. /help lists what I can do.",
        "blocked": "Sorry, this account cannot make purchases. Write to /support.",
        "receipt": (
            "Receipt for order {reference}\n{lines}\nTotal paid: {total}\n"
            "Payment id: {charge_id}\nDate: {date}"
        ),
        "receipt_topup": "Your balance was credited with {amount}.",
        "receipt_digital": "Your item:\n{content}",
        "receipt_shipping": "We will ship your order and tell you when it is on its way.",
        "shipped": (
            "Your order {reference} is on its way with {carrier}.\nTracking number: {tracking}"
        ),
        "shipped_link": "Follow it here: {url}",
        "delivered": "Your order {reference} has been delivered. Thank you for shopping with us!",
        "choose_option": "{title}: choose {option}.",
        "refund_note": "We refunded {amount} for order {reference}. Reason: {reason}.",
        "refund_note_stars": "We refunded {amount} for order {reference}. The Stars are back on your account.",
        "shipping_standard": "Standard delivery",
        # pre_checkout_query refusals: shown by Telegram on the payment form.
        "err_invoice_invalid": "This invoice is not valid. Please request a new one from /catalog.",
        "err_not_your_order": "This invoice was issued to another customer. Please get your own from /catalog.",
        "err_order_closed": "This order can no longer be paid. Please start a new one from /catalog.",
        "err_expired": "This invoice has expired, so it can no longer be paid. Please order again from /catalog.",
        "invoice_reminder": (
            "Your order {reference} ({total}) is still waiting for payment. Here is a fresh "
            "invoice; it can be paid until {expires}.\n/stop_reminders — no more reminders."
        ),
        "reminders_off": "Done: no more reminders about unpaid orders.",
        "err_already_paid": "This order is already paid.",
        "err_amount": "The price has changed. Please request a new invoice from /catalog.",
        "err_inactive": "Sorry, this product is no longer on sale.",
        "err_out_of_stock": "Sorry, this product just sold out.",
        "err_blocked": "Sorry, this account cannot make purchases. Please contact /support.",
    },
    "ru": {
        "welcome": (
            "Здравствуйте, {name}! Это {shop}.\n\n"
            "/catalog — каталог и покупки\n/orders — ваши заказы\n/balance — ваш баланс\n"
            "/terms — условия продажи\n/support — задать вопрос\n/help — этот список"
        ),
        "help": (
            "/catalog — каталог и покупки\n/orders — последние заказы\n/balance — ваш баланс\n"
            "/terms — условия продажи и возврата\n/support <вопрос> — написать нам\n"
            "/stop_reminders — не напоминать о неоплаченных заказах\n/start — начать сначала"
        ),
        "catalog_header": "Каталог, страница {page} из {pages}:",
        "catalog_empty": "Сейчас ничего нет в продаже. Загляните позже.",
        "catalog_line": "• {title} — {price}\n  {description}",
        "buy_button": "Купить {title} · {price}",
        "prev": "« Назад",
        "next": "Ещё »",
        "product_missing": "Извините, этот товар недоступен.",
        "product_card": "{title} — {price}\n\n{description}",
        "terms_prompt": "Перед первой покупкой прочитайте и примите наши условия:",
        "terms": (
            "Условия продажи (версия {version})\n\n"
            "1. Цена и валюта показаны до оплаты; оплата проходит в Telegram.\n"
            "2. Пополнения зачисляются на баланс сразу после оплаты; цифровые товары приходят "
            "в этот чат; физические товары отправляем по указанному адресу.\n"
            "3. Возврат: напишите в /support в течение 14 дней. Одобренный возврат поступит на "
            "карту или баланс Stars, с которых была оплата.\n"
            "4. Поддержка отвечает в этом чате, обычно в течение рабочего дня."
        ),
        "terms_accepted": "Спасибо, условия приняты (версия {version}).",
        "terms_already": "Вы приняли эти условия (версия {version}) {date}.",
        "agree_button": "Принимаю",
        "orders_empty": "У вас пока нет заказов. Загляните в /catalog.",
        "orders_header": "Ваши последние заказы:",
        "orders_line": "{reference} · {date} · {total} · {status}",
        "balance_empty": "Ваш баланс пуст.",
        "balance_header": "Ваш баланс:",
        "support_prompt": "Напишите ваш вопрос одним сообщением. Команда ответит здесь.",
        "paysupport": (
            "Помощь с оплатой: опишите, что случилось, одним сообщением (номер заказа поможет), "
            "и команда ответит здесь. Возвраты — по нашим условиям: /terms."
        ),
        "support_received": "Спасибо, ваше обращение №{number} получено. Мы ответим здесь.",
        "support_answer": "Ответ поддержки на обращение №{number}:\n\n{answer}",
        "unknown": "Извините, я не понял. /help — что я умею.",
        "blocked": "Извините, с этого аккаунта нельзя совершать покупки. Напишите в /support.",
        "receipt": (
            "Чек по заказу {reference}\n{lines}\nОплачено: {total}\n"
            "Идентификатор платежа: {charge_id}\nДата: {date}"
        ),
        "receipt_topup": "На ваш баланс зачислено {amount}.",
        "receipt_digital": "Ваш товар:\n{content}",
        "receipt_shipping": "Мы отправим заказ и сообщим, когда он будет в пути.",
        "shipped": "Ваш заказ {reference} в пути, служба доставки {carrier}.\nТрек-номер: {tracking}",
        "shipped_link": "Отследить: {url}",
        "delivered": "Ваш заказ {reference} доставлен. Спасибо за покупку!",
        "choose_option": "{title}: выберите {option}.",
        "refund_note": "Мы вернули {amount} по заказу {reference}. Причина: {reason}.",
        "refund_note_stars": "Мы вернули {amount} по заказу {reference}. Звёзды снова на вашем счёте.",
        "shipping_standard": "Стандартная доставка",
        "err_invoice_invalid": "Этот счёт недействителен. Запросите новый в /catalog.",
        "err_not_your_order": "Этот счёт выставлен другому покупателю. Запросите свой в /catalog.",
        "err_order_closed": "Этот заказ уже нельзя оплатить. Оформите новый в /catalog.",
        "err_expired": "Срок этого счёта истёк, оплатить его уже нельзя. Оформите заказ заново в /catalog.",
        "invoice_reminder": (
            "Ваш заказ {reference} ({total}) ещё ждёт оплаты. Вот новый счёт; его можно оплатить "
            "до {expires}.\n/stop_reminders — больше не напоминать."
        ),
        "reminders_off": "Готово: больше не буду напоминать о неоплаченных заказах.",
        "err_already_paid": "Этот заказ уже оплачен.",
        "err_amount": "Цена изменилась. Запросите новый счёт в /catalog.",
        "err_inactive": "Извините, этот товар больше не продаётся.",
        "err_out_of_stock": "Извините, этот товар только что закончился.",
        "err_blocked": "Извините, с этого аккаунта нельзя совершать покупки. Напишите в /support.",
    },
}

STATUS_NAMES = {
    "ru": {
        "created": "создан",
        "invoiced": "ожидает оплаты",
        "paid": "оплачен",
        "awaiting_shipment": "ожидает отправки",
        "shipped": "отправлен",
        "fulfilled": "выполнен",
        "cancelled": "отменён",
        "expired": "истёк",
        "refunded": "возвращён",
        "partially_refunded": "частично возвращён",
        "disputed": "оспорен",
        "charged_back": "возвратный платёж",
    },
    "en": {
        "awaiting_shipment": "awaiting shipment",
        "partially_refunded": "partially refunded",
        "charged_back": "charged back",
        "invoiced": "awaiting payment",
    },
}


REFUND_REASONS = {
    "en": {
        "customer_request": "at your request",
        "not_delivered": "the order was not delivered",
        "defective": "the item was defective or not as described",
        "duplicate": "duplicate payment",
        "fraud": "the payment could not be accepted",
        "other": "see our message from support",
    },
    "ru": {
        "customer_request": "по вашей просьбе",
        "not_delivered": "заказ не был доставлен",
        "defective": "товар с дефектом или не соответствует описанию",
        "duplicate": "повторный платёж",
        "fraud": "платёж не может быть принят",
        "other": "подробности в сообщении поддержки",
    },
}


def refund_reason(language: str, reason: str) -> str:
    return REFUND_REASONS.get(language, REFUND_REASONS["en"]).get(reason, reason)


def text(language: str, key: str, **values: object) -> str:
    table = TEXTS.get(language, TEXTS["en"])
    return table[key].format(**values)


def status_name(language: str, status: str) -> str:
    return STATUS_NAMES.get(language, {}).get(status, status)
