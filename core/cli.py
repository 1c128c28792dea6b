"""What the management commands share when reading their arguments."""

from datetime import date

from django.core.management.base import CommandError


def day(text: str) -> date:
    """A day typed on the command line (YYYY-MM-DD), or a clear CommandError."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD).") from None
