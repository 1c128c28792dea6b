"""Domain errors: raised by services, shown to staff or customers by the edges."""


class DomainError(Exception):
    """A rule of the business refused the action; nothing was changed."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class IllegalTransition(DomainError):
    code = "illegal_transition"


class NotAvailable(DomainError):
    code = "not_available"
