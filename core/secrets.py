"""Secrets never reach the database, a log line or a page: mask them wherever text leaves.

The Bot API puts the bot token in every request URL, so an error quoting the URL would carry
it. `mask` replaces each configured secret (settings.SECRET_SETTINGS); `MaskSecretsFilter`
does it for every log record, exception text included, on the handlers of LOGGING.
"""

import logging

from django.conf import settings


def _secrets() -> list[tuple[str, str]]:
    found = []
    for name in getattr(settings, "SECRET_SETTINGS", ()):
        value = str(getattr(settings, name, "") or "")
        if len(value) >= 8:
            found.append((value, name))
            # A bot token's secret half alone (after "<bot id>:") is as sensitive.
            _, _, tail = value.partition(":")
            if len(tail) >= 8:
                found.append((tail, name))
    return found


def mask(text: str) -> str:
    """The text with every configured secret replaced by <SETTING_NAME>."""
    for secret, name in _secrets():
        if secret in text:
            text = text.replace(secret, f"<{name}>")
    return text


class MaskSecretsFilter(logging.Filter):
    """A logging filter that masks secrets in the message and in the exception's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: leave it be
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True
