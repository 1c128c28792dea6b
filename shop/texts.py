"""What the bot says, in English and Russian. Chosen per customer from Telegram's language_code."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "welcome": (
            "Hello, {name}! This is {shop}.\n\n"
            "/catalog — browse and buy\n/cart — your cart\n/orders — your orders\n"
            "/subscriptions — your subscriptions\n/balance — your balance\n"
            "/terms — terms of sale\n/support — ask us anything\n/paysupport — help with a payment\n"
            "/help — this list"
        ),
        "help": (
            "/catalog — browse and buy\n/cart — your cart\n/promo <code> — use a promo code\n"
            "/orders — your recent orders\n/subscriptions — your subscriptions, cancel renewal\n"
            "/balance — your balance\n"
            "/terms — terms of sale and refunds\n/support <question> — write to our team\n"
            "/stop_reminders — no reminders about unpaid orders\n/start — start over"
        ),
        "catalog_header": "Catalog, page {page} of {pages}:",
        "catalog_empty": "Nothing is on sale right now. Please come back later.",
        "catalog_line": "• {title} — {price}\n  {description}",
        "buy_button": "Buy {title} · {price}",
        "subscribe_button": "Subscribe: {title} · {price} / 30 days",
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
        "invoice_title": "Order {reference}",
        "invoice_discount": "Promo code {code}",
        "invoice_discount_note": "Promo code {code}: {amount} off",
        "invoice_delivery": "Delivery",
        "add_button": "Add to cart",
        "added": "Added to your cart: {title}. /cart to see it.",
        "cart_header": "Your cart:",
        "cart_line": "{title} × {quantity} — {total}",
        "cart_line_stale_inactive": "   ⚠ no longer on sale",
        "cart_line_stale_price_changed": "   ⚠ the price is now {price}",
        "cart_line_stale_option": "   ⚠ this option is no longer offered",
        "cart_line_stale_out_of_stock": "   ⚠ only {stock} left",
        "cart_subtotal": "Subtotal: {amount}",
        "cart_discount": "Promo code {code}: −{amount}",
        "cart_promo_refused": "Promo code {code} does not apply: {reason}",
        "cart_delivery": "Delivery: {amount}",
        "cart_total": "Total: {amount}",
        "cart_empty": "Your cart is empty. Add products from /catalog.",
        "cart_checkout_button": "Check out · {amount}",
        "cart_promo_button": "Promo code",
        "cart_promo_remove_button": "Remove the code",
        "cart_clear_button": "Empty the cart",
        "cart_refresh_button": "Update the cart",
        "cart_cleared": "Your cart is empty now.",
        "cart_checked_out": "Your cart became order {reference} ({total}); its invoice is below.",
        "promo_prompt": "Send your promo code in one message (or /promo CODE).",
        "promo_applied": "Promo code {code} applied.",
        "other_currency": (
            "Your cart is in {cart_currency}, and {title} is priced in {currency}. A cart holds "
            "one currency. Start a new cart with it?"
        ),
        "new_cart_button": "Start a new cart",
        "keep_cart_button": "Keep my cart",
        "subscription_offer": "{title}: {price} every 30 days. Subscribe with the button; you can cancel any time in /subscriptions.",
        "subscription_button": "Subscribe · {price} / 30 days",
        "receipt_subscription": "Your subscription is active. /subscriptions shows when it renews.",
        "receipt_subscription_until": "Your subscription runs until {date}. /subscriptions to see or cancel the renewal.",
        "subscription_already": "You are already subscribed to {title}. /subscriptions shows it.",
        "subscriptions_empty": "You have no subscriptions. Look for them in /catalog.",
        "subscriptions_header": "Your subscriptions:",
        "subscription_line_renews": "{title} — {price} / 30 days, renews on {date}",
        "subscription_line_ends": "{title} — renewal cancelled, access until {date}",
        "subscription_line_expired": "{title} — ended on {date}",
        "subscription_cancel_button": "Cancel {title}",
        "subscription_reenable_button": "Renew {title} again",
        "subscription_cancelled": "The renewal of {title} is cancelled. Your access stays until {date}.",
        "subscription_reenabled": "{title} will renew again. Next renewal: {date}.",
        "subscription_expired": "Your subscription {title} has ended. You can subscribe again from /catalog.",
        "err_price_changed": "A price in this order changed since the invoice. Please check out again from /cart.",
        "err_cart_empty": "Your cart is empty. Add products from /catalog.",
        "err_cart_stale": "Something in your cart changed since you added it (see above). Update the cart and check it again.",
        "err_cart_amount": "The total is outside what the payment system accepts in this currency. Please change the cart.",
        "err_cart_full": "Your cart is full. Check out or remove something first.",
        "err_bad_quantity": "That quantity is not possible.",
        "err_not_in_cart": "Subscriptions are bought on their own, not in the cart.",
        "err_promo_unknown": "There is no such promo code.",
        "err_promo_inactive": "This promo code is not active.",
        "err_promo_not_started": "This promo code is not valid yet.",
        "err_promo_expired": "This promo code has expired.",
        "err_promo_exhausted": "This promo code has been used up.",
        "err_promo_used_by_you": "You have already used this promo code.",
        "err_promo_not_applicable": "This promo code does not apply to the products in your cart.",
        "err_promo_too_much": "With this promo code the total would be below the minimum the payment system accepts.",
    },
    "ru": {
        "welcome": (
            "Здравствуйте, {name}! Это {shop}.\n\n"
            "/catalog — каталог и покупки\n/cart — корзина\n/orders — ваши заказы\n"
            "/subscriptions — ваши подписки\n/balance — ваш баланс\n"
            "/terms — условия продажи\n/support — задать вопрос\n/help — этот список"
        ),
        "help": (
            "/catalog — каталог и покупки\n/cart — корзина\n/promo <код> — применить промокод\n"
            "/orders — последние заказы\n/subscriptions — подписки, отмена продления\n"
            "/balance — ваш баланс\n"
            "/terms — условия продажи и возврата\n/support <вопрос> — написать нам\n"
            "/stop_reminders — не напоминать о неоплаченных заказах\n/start — начать сначала"
        ),
        "catalog_header": "Каталог, страница {page} из {pages}:",
        "catalog_empty": "Сейчас ничего нет в продаже. Загляните позже.",
        "catalog_line": "• {title} — {price}\n  {description}",
        "buy_button": "Купить {title} · {price}",
        "subscribe_button": "Подписка: {title} · {price} / 30 дней",
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
        "invoice_title": "Заказ {reference}",
        "invoice_discount": "Промокод {code}",
        "invoice_discount_note": "Промокод {code}: скидка {amount}",
        "invoice_delivery": "Доставка",
        "add_button": "В корзину",
        "added": "Добавлено в корзину: {title}. /cart — посмотреть.",
        "cart_header": "Ваша корзина:",
        "cart_line": "{title} × {quantity} — {total}",
        "cart_line_stale_inactive": "   ⚠ больше не продаётся",
        "cart_line_stale_price_changed": "   ⚠ цена теперь {price}",
        "cart_line_stale_option": "   ⚠ этот вариант больше не предлагается",
        "cart_line_stale_out_of_stock": "   ⚠ осталось только {stock}",
        "cart_subtotal": "Сумма: {amount}",
        "cart_discount": "Промокод {code}: −{amount}",
        "cart_promo_refused": "Промокод {code} не действует: {reason}",
        "cart_delivery": "Доставка: {amount}",
        "cart_total": "Итого: {amount}",
        "cart_empty": "Корзина пуста. Добавьте товары из /catalog.",
        "cart_checkout_button": "Оформить · {amount}",
        "cart_promo_button": "Промокод",
        "cart_promo_remove_button": "Убрать промокод",
        "cart_clear_button": "Очистить корзину",
        "cart_refresh_button": "Обновить корзину",
        "cart_cleared": "Корзина очищена.",
        "cart_checked_out": "Корзина стала заказом {reference} ({total}); счёт ниже.",
        "promo_prompt": "Отправьте промокод одним сообщением (или /promo КОД).",
        "promo_applied": "Промокод {code} применён.",
        "other_currency": (
            "Ваша корзина в {cart_currency}, а «{title}» продаётся в {currency}. В корзине может "
            "быть только одна валюта. Начать новую корзину с этим товаром?"
        ),
        "new_cart_button": "Начать новую корзину",
        "keep_cart_button": "Оставить корзину",
        "subscription_offer": "{title}: {price} каждые 30 дней. Оформите подписку кнопкой; отменить можно в любой момент в /subscriptions.",
        "subscription_button": "Подписаться · {price} / 30 дней",
        "receipt_subscription": "Подписка активна. /subscriptions — когда она продлится.",
        "receipt_subscription_until": "Подписка действует до {date}. /subscriptions — посмотреть или отменить продление.",
        "subscription_already": "Вы уже подписаны на «{title}». /subscriptions — подробности.",
        "subscriptions_empty": "У вас нет подписок. Они есть в /catalog.",
        "subscriptions_header": "Ваши подписки:",
        "subscription_line_renews": "{title} — {price} / 30 дней, продление {date}",
        "subscription_line_ends": "{title} — продление отменено, доступ до {date}",
        "subscription_line_expired": "{title} — закончилась {date}",
        "subscription_cancel_button": "Отменить «{title}»",
        "subscription_reenable_button": "Снова продлевать «{title}»",
        "subscription_cancelled": "Продление подписки «{title}» отменено. Доступ сохранится до {date}.",
        "subscription_reenabled": "Подписка «{title}» снова будет продлеваться. Следующее продление: {date}.",
        "subscription_expired": "Ваша подписка «{title}» закончилась. Оформить её снова можно в /catalog.",
        "err_price_changed": "Цена в этом заказе изменилась после выставления счёта. Оформите заказ заново из /cart.",
        "err_cart_empty": "Корзина пуста. Добавьте товары из /catalog.",
        "err_cart_stale": "В корзине что-то изменилось с момента добавления (см. выше). Обновите корзину и проверьте её.",
        "err_cart_amount": "Сумма вне пределов, которые платёжная система принимает в этой валюте. Измените корзину.",
        "err_cart_full": "Корзина заполнена. Оформите заказ или уберите что-нибудь.",
        "err_bad_quantity": "Такое количество невозможно.",
        "err_not_in_cart": "Подписки оформляются отдельно, не через корзину.",
        "err_promo_unknown": "Такого промокода нет.",
        "err_promo_inactive": "Этот промокод не активен.",
        "err_promo_not_started": "Этот промокод ещё не действует.",
        "err_promo_expired": "Срок действия этого промокода истёк.",
        "err_promo_exhausted": "Этот промокод уже израсходован.",
        "err_promo_used_by_you": "Вы уже использовали этот промокод.",
        "err_promo_not_applicable": "Этот промокод не действует на товары в вашей корзине.",
        "err_promo_too_much": "С этим промокодом сумма окажется ниже минимальной, которую принимает платёжная система.",
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
