"""Support requests and the conversation with customers (the outbox)."""

from django.contrib import admin, messages
from django.db.models import QuerySet

from core.admin.mixins import RecordAdminMixin, folded_json
from core.admin.pagination import EstimatedCountPaginator
from core.errors import DomainError
from shop import outbox
from shop import services as shop_services
from shop.models import (
    Message,
    SupportRequest,
)


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    """The support queue: open requests first, oldest first."""

    list_display = ["pk", "customer", "status", "short_text", "created_at", "answered_at"]
    ordering = ["-status", "created_at"]
    list_filter = ["status"]
    search_fields = ["text", "=customer__telegram_id", "customer__username"]
    list_select_related = ["customer"]
    readonly_fields = ["customer", "text", "status", "answered_by", "answered_at", "created_at"]
    fields = ["customer", "created_at", "text", "status", "answer", "answered_by", "answered_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != SupportRequest.Status.OPEN:
            return [*self.readonly_fields, "answer"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        # The answer goes to the customer in Telegram; the service sends it and records it.
        if "answer" in form.changed_data:
            try:
                shop_services.support_request_answer(
                    support_request=obj, answer=form.cleaned_data["answer"], actor=request.user
                )
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request, "Answer sent to the customer in Telegram.", messages.SUCCESS
                )

    @admin.display(description="Question")
    def short_text(self, obj: SupportRequest) -> str:
        return obj.text[:80]

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(RecordAdminMixin, admin.ModelAdmin):
    """The conversation with customers; failed outbound messages can be sent again."""

    list_display = [
        "created_at",
        "direction",
        "customer",
        "method",
        "short_text",
        "status",
        "attempts",
    ]
    list_filter = ["direction", "status", "method"]
    search_fields = ["=chat_id", "customer__username", "text"]
    list_select_related = ["customer"]
    readonly_fields = ["created_at", "direction", "customer", "order", "chat_id", "method",
                       "text", "status", "attempts", "error", "next_attempt_at", "sent_at",
                       "telegram_message_id", "telegram_update_id", "dedupe_key",
                       "params_display"]  # fmt: skip
    fields = readonly_fields
    actions = ["retry"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    @admin.display(description="Bot API call")
    def params_display(self, obj: Message) -> str:
        return folded_json(obj.params)

    @admin.display(description="Text")
    def short_text(self, obj: Message) -> str:
        return obj.text[:80]

    @admin.action(description="Retry selected failed messages", permissions=["change"])
    def retry(self, request, queryset: QuerySet[Message]):
        done = 0
        for message in queryset:
            try:
                outbox.message_retry(message=message)
                done += 1
            except DomainError as error:
                self.message_user(request, f"Message {message.pk}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, f"Queued {done} message(s) again.", messages.SUCCESS)
