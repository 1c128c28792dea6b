"""Support requests: asked in the bot, answered by staff in the admin."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from shop import notices
from shop.models import (
    Customer,
    SupportRequest,
)


@transaction.atomic
def support_request_create(*, customer: Customer, text: str) -> SupportRequest:
    """A customer's question for staff, from the bot's /support."""
    text = (text or "").strip()
    if not text:
        raise DomainError("Please write your question.", code="empty")
    return SupportRequest.objects.create(customer=customer, text=text[:4000])


@transaction.atomic
def support_request_answer(
    *, support_request: SupportRequest, answer: str, actor: AbstractBaseUser
) -> SupportRequest:
    """Staff answer a support request; the answer is sent to the customer in Telegram."""
    answer = (answer or "").strip()
    if not answer:
        raise DomainError("Write an answer first.", code="empty")
    locked = (
        SupportRequest.objects.select_for_update()
        .select_related("customer")
        .get(pk=support_request.pk)
    )
    if locked.status != SupportRequest.Status.OPEN:
        raise DomainError(
            f"Support request #{locked.pk} is already {locked.status}.", code="not_open"
        )
    locked.answer = answer
    locked.status = SupportRequest.Status.ANSWERED
    locked.answered_by = actor
    locked.answered_at = timezone.now()
    locked.save(update_fields=["answer", "status", "answered_by", "answered_at"])
    notices.support_answer_queue(customer=locked.customer, request_id=locked.pk, answer=answer)
    return locked
