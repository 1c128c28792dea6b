from django.contrib import admin, messages
from django.db.models import QuerySet

from botbridge import services
from botbridge.models import TelegramUpdate, WebhookStatus
from core.admin.mixins import ReadOnlyAdminMixin, folded_json
from core.admin.pagination import EstimatedCountPaginator
from core.errors import DomainError


@admin.register(TelegramUpdate)
class TelegramUpdateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["update_id", "kind", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "kind"]
    search_fields = ["=update_id"]
    readonly_fields = [
        "update_id",
        "kind",
        "status",
        "attempts",
        "received_at",
        "processed_at",
        "payload_display",
        "reply_display",
        "error",
    ]
    actions = ["replay"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    @admin.display(description="Update as Telegram sent it")
    def payload_display(self, obj: TelegramUpdate) -> str:
        return folded_json(obj.payload)

    @admin.display(description="Answer sent back")
    def reply_display(self, obj: TelegramUpdate) -> str:
        return folded_json(obj.reply)

    def has_replay_permission(self, request) -> bool:
        """Replaying runs the update's handling again: managers only (a change permission);
        support and finance see the updates, and the failed ones on the dashboard."""
        return request.user.has_perm("botbridge.change_telegramupdate")

    @admin.action(description="Replay selected failed updates", permissions=["replay"])
    def replay(self, request, queryset: QuerySet[TelegramUpdate]):
        done = 0
        for update in queryset:
            try:
                row = services.update_replay(update=update)
            except DomainError as error:
                self.message_user(
                    request, f"Update {update.update_id}: {error.message}", messages.ERROR
                )
                continue
            if row.status == TelegramUpdate.Status.PROCESSED:
                done += 1
            else:
                self.message_user(
                    request,
                    f"Update {row.update_id} failed again; see its error.",
                    messages.WARNING,
                )
        if done:
            self.message_user(request, f"Replayed {done} update(s).", messages.SUCCESS)


@admin.register(WebhookStatus)
class WebhookStatusAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What Telegram said of the webhook, every 5 minutes (beat's botbridge.webhook_check)."""

    list_display = ["checked_at", "pending_update_count", "last_error_date", "last_error_message",
                    "error"]  # fmt: skip
