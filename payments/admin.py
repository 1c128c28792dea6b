import re

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpResponse,
)
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.html import format_html

from core import money
from core.admin.mixins import ReadOnlyAdminMixin, ReadOnlyInline, RecordAdminMixin, folded_json
from core.admin.pagination import EstimatedCountPaginator
from core.admin.search import TELEGRAM_ID, IndexedSearchMixin, exact, username
from core.admin.steps import StepsAdminMixin
from core.errors import DomainError
from payments import forms, selectors
from payments import services as payment_services
from payments.admin_exports import ExportActionMixin
from payments.admin_reconciliation import DifferenceInline, StatementRowInline, apay_check_view
from payments.evidence import evidence_pack
from payments.models import ChargeConflict, Dispute, LedgerEntry, Payment, Refund
from payments.services import disputes
from shop.admin import CurrencyFilter
from shop.models import PaymentMode


class MoneyDisplayMixin:
    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj) -> str:
        return money.format_amount(obj.amount, obj.currency)


class PaymentMoneyMixin(MoneyDisplayMixin):
    @admin.display(description="Refunded", ordering="refunded_amount")
    def refunded_display(self, obj: Payment) -> str:
        return (
            money.format_amount(obj.refunded_amount, obj.currency) if obj.refunded_amount else "—"
        )


@admin.register(ChargeConflict)
class ChargeConflictAdmin(StepsAdminMixin, RecordAdminMixin, MoneyDisplayMixin, admin.ModelAdmin):
    """Charge ids Telegram reported again with other figures: for finance to look into."""

    list_display = ["telegram_payment_charge_id", "payment", "amount_display", "received_at",
                    "is_resolved"]  # fmt: skip
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["=telegram_payment_charge_id"]
    list_select_related = ["payment"]
    fields = ["telegram_payment_charge_id", "payment", "amount_display", "invoice_payload",
              "received_at", "resolved_at", "resolved_by", "note", "raw_display"]  # fmt: skip
    readonly_fields = fields
    step_views = (("resolve", "resolve_view"),)

    @admin.display(description="Resolved", boolean=True)
    def is_resolved(self, obj: ChargeConflict) -> bool:
        return obj.resolved_at is not None

    @admin.display(description="As Telegram reported it")
    def raw_display(self, obj: ChargeConflict) -> str:
        return folded_json(obj.raw)

    def steps_for(self, request, obj):
        if obj.resolved_at is None and request.user.has_perm("payments.change_chargeconflict"):
            return [{"label": "Mark resolved", "url": self.step_url(obj, "resolve")}]
        return []

    def resolve_view(self, request, object_id):
        conflict = get_object_or_404(ChargeConflict, pk=object_id)

        def act(data):
            payment_services.charge_conflict_resolve(
                conflict=conflict, note=data["notes"], actor=request.user
            )
            return "Marked resolved."

        return self.run_step(
            request,
            conflict,
            permission="payments.change_chargeconflict",
            title=f"Resolve: {conflict}",
            intro="Say what you found and did (kept with the record).",
            form_class=forms.DisputeStepForm,
            act=act,
            submit_label="Mark resolved",
        )


class CreditStateFilter(admin.SimpleListFilter):
    """Where a payment is in crediting; the dashboard's tiles link here."""

    title = "crediting"
    parameter_name = "credit"

    def lookups(self, request, model_admin):
        return [
            ("overdue", "Not credited past the grace period"),
            ("review", "Held for review"),
            ("credited", "Credited"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            cutoff = timezone.now() - settings.PAYMENTS_CREDIT_GRACE
            uncredited = payment_services.payments_uncredited(cutoff=cutoff)
            return queryset.filter(pk__in=uncredited.values("pk"))
        if self.value() == "review":
            return queryset.exclude(review_reason="")
        if self.value() == "credited":
            return queryset.filter(credited_at__isnull=False)
        return queryset


def mode_badge(mode: str) -> str:
    """TEST payments stand out everywhere they are listed; live ones need no badge."""
    if mode == PaymentMode.TEST:
        return format_html('<span class="badge-test" style="background:#c62828;color:#fff;'
                           'padding:1px 6px;border-radius:3px;font-weight:bold">TEST</span>')  # fmt: skip
    if mode == PaymentMode.SANDBOX:
        return format_html('<span class="badge-sandbox" style="background:#777;color:#fff;'
                           'padding:1px 6px;border-radius:3px">SANDBOX</span>')  # fmt: skip
    return "—"


class PaymentInline(PaymentMoneyMixin, ReadOnlyInline):
    """An order's payments, each linking to its page."""

    model = Payment
    fields = ["telegram_payment_charge_id", "provider", "amount_display", "refunded_display",
              "review_reason", "paid_at", "credited_at"]  # fmt: skip
    readonly_fields = fields


class RefundInline(MoneyDisplayMixin, ReadOnlyInline):
    """A payment's (or an order's) refunds, each linking to its page."""

    model = Refund
    fields = ["amount_display", "reason", "status", "author", "external_reference", "created_at",
              "completed_at"]  # fmt: skip
    readonly_fields = fields


class DisputeInline(MoneyDisplayMixin, ReadOnlyInline):
    """A payment's (or an order's) disputes, each linking to its page."""

    model = Dispute
    fields = ["amount_display", "reason", "status", "evidence_due_by", "assignee"]
    readonly_fields = fields


@admin.register(Payment)
class PaymentAdmin(
    IndexedSearchMixin,
    ExportActionMixin,
    StepsAdminMixin,
    RecordAdminMixin,
    PaymentMoneyMixin,
    admin.ModelAdmin,
):
    export_report = "payments"
    list_display = ["charge_id", "mode_badge", "order", "customer", "provider_short",
                    "amount_display", "refunded_display", "review", "paid_at",
                    "is_credited"]  # fmt: skip
    list_filter = [CreditStateFilter, "mode", "provider", CurrencyFilter, "review_reason",
                   "paid_at"]  # fmt: skip
    search_fields = ["telegram_payment_charge_id"]
    search_help_text = "Telegram or A-Pay charge id, order reference, Telegram id or @username."
    search_lookups = (
        exact("telegram_payment_charge_id"),
        exact("provider_payment_charge_id"),
        exact("order__reference", re.compile(r"[0-9A-Za-z]{8}"), str.upper),
        exact("customer__telegram_id", TELEGRAM_ID, int),
        username("customer__username"),
    )
    list_select_related = ["order", "customer"]
    raw_id_fields = ["order", "customer"]
    readonly_fields = ["mode_badge", "telegram_payment_charge_id", "provider_payment_charge_id",
                       "provider",
                       "order", "customer", "amount_display", "refunded_display",
                       "promo_display", "renewal_display",
                       "review_reason", "paid_at", "credited_at", "raw_display"]  # fmt: skip
    fields = readonly_fields
    inlines = [RefundInline, DisputeInline, StatementRowInline, DifferenceInline]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    step_views = (("refund", "refund_view"), ("dispute", "dispute_view"),
                  ("apay", "apay_view"))  # fmt: skip

    def get_inlines(self, request, obj):
        inlines = super().get_inlines(request, obj)
        if obj is not None and obj.provider != Payment.Provider.APAY:
            return [i for i in inlines if i is not StatementRowInline]
        return inlines

    def apay_view(self, request, object_id):
        return apay_check_view(self, request, object_id)

    @admin.display(description="Subscription")
    def renewal_display(self, obj: Payment) -> str:
        if obj.is_recurring:
            return "a renewal Telegram charged"
        return "—"

    @admin.display(description="Promo code")
    def promo_display(self, obj: Payment) -> str:
        if not obj.promo_code:
            return "—"
        off = money.format_amount(obj.discount_amount, obj.currency)
        return f"{obj.promo_code}: {off} off (the amount is net of it)"

    @admin.display(description="Provider", ordering="provider")
    def provider_short(self, obj: Payment) -> str:
        return "Stars" if obj.provider == Payment.Provider.STARS else "A-Pay"

    @admin.display(description="Review", ordering="review_reason")
    def review(self, obj: Payment) -> str:
        return obj.get_review_reason_display()

    @admin.display(description="Mode", ordering="mode")
    def mode_badge(self, obj: Payment) -> str:
        return mode_badge(obj.mode)

    @admin.display(description="Charge id", ordering="telegram_payment_charge_id")
    def charge_id(self, obj: Payment) -> str:
        return obj.telegram_payment_charge_id

    @admin.display(description="Credited", boolean=True, ordering="credited_at")
    def is_credited(self, obj: Payment) -> bool:
        return obj.credited_at is not None

    @admin.display(description="Refunded", ordering="refunded_amount")
    def refunded_display(self, obj: Payment) -> str:
        return (
            money.format_amount(obj.refunded_amount, obj.currency) if obj.refunded_amount else "—"
        )

    @admin.display(description="As Telegram reported it")
    def raw_display(self, obj: Payment) -> str:
        return folded_json(obj.raw)

    def steps_for(self, request, obj):
        """Only the steps the payment's state allows: no refund on a charged-back payment."""
        allowed = selectors.payment_open_steps(payment=obj)
        steps = []
        if request.user.has_perm("payments.add_refund") and allowed["refund"]:
            steps.append({"label": "Record refund", "url": self.step_url(obj, "refund")})
        if request.user.has_perm("payments.add_dispute") and allowed["dispute"]:
            steps.append({"label": "Open dispute", "url": self.step_url(obj, "dispute")})
        if obj.provider == Payment.Provider.APAY and obj.provider_payment_charge_id:
            steps.append({"label": "Check at A-Pay", "url": self.step_url(obj, "apay")})
        return steps

    def refund_view(self, request, object_id):
        payment = get_object_or_404(Payment, pk=object_id)

        def act(data):
            refund = payment_services.refund_create(
                payment=payment,
                amount=data["amount"],
                reason=data["reason"],
                note=data["note"],
                author=request.user,
                restock=data.get("restock", False),
            )
            how = (
                "Telegram is refunding the Stars now."
                if refund.currency == money.STARS
                else "Make the refund at A-Pay, then confirm it here with A-Pay's reference."
            )
            shown = money.format_amount(refund.amount, refund.currency)
            return f"Refund #{refund.pk} of {shown} recorded. {how}", refund

        return self.run_step(
            request,
            payment,
            permission="payments.add_refund",
            title=f"Record a refund on {payment}",
            form_class=forms.RefundForm,
            form_kwargs={"payment": payment},
            act=act,
            submit_label="Record refund",
        )

    def dispute_view(self, request, object_id):
        payment = get_object_or_404(Payment, pk=object_id)

        def act(data):
            dispute = disputes.dispute_open(payment=payment, actor=request.user, **data)
            return f"Dispute #{dispute.pk} opened.", dispute

        return self.run_step(
            request,
            payment,
            permission="payments.add_dispute",
            title=f"Open a dispute on {payment}",
            intro="From the provider's dispute or chargeback notice.",
            form_class=forms.DisputeOpenForm,
            form_kwargs={"payment": payment},
            act=act,
            submit_label="Open dispute",
        )


@admin.register(Refund)
class RefundAdmin(
    ExportActionMixin, StepsAdminMixin, RecordAdminMixin, MoneyDisplayMixin, admin.ModelAdmin
):
    export_report = "refunds"
    list_display = ["pk", "payment", "order", "amount_display", "reason", "status", "author",
                    "created_at", "short_error"]  # fmt: skip
    list_filter = ["status", "reason", "source", CurrencyFilter]
    search_fields = [
        "=payment__telegram_payment_charge_id",
        "=order__reference",
        "external_reference",
    ]
    list_select_related = ["payment", "order", "author"]
    readonly_fields = ["payment", "order", "amount_display", "reason", "note", "restock",
                       "status", "source", "author", "external_reference", "error", "attempts",
                       "created_at", "completed_at"]  # fmt: skip
    fields = readonly_fields
    actions = ["retry", "cancel"]
    step_views = (("confirm", "confirm_view"),)

    @admin.display(description="Error")
    def short_error(self, obj: Refund) -> str:
        return obj.error[:80]

    def steps_for(self, request, obj):
        if (
            obj.status == Refund.Status.PENDING
            and obj.currency != money.STARS
            and request.user.has_perm("payments.change_refund")
        ):
            return [{"label": "Confirm refund made", "url": self.step_url(obj, "confirm")}]
        return []

    def confirm_view(self, request, object_id):
        refund = get_object_or_404(Refund, pk=object_id)

        def act(data):
            payment_services.refund_confirm(
                refund=refund, external_reference=data["external_reference"], actor=request.user
            )
            return f"Refund #{refund.pk} completed; the customer is told in Telegram."

        return self.run_step(
            request,
            refund,
            permission="payments.change_refund",
            title=f"Confirm refund #{refund.pk} was made at A-Pay",
            intro=(
                f"{money.format_amount(refund.amount, refund.currency)} on payment "
                f"{refund.payment.telegram_payment_charge_id}."
            ),
            form_class=forms.RefundConfirmForm,
            act=act,
            submit_label="Confirm refund",
        )

    def _each(self, request, queryset, service, done_text):
        done = 0
        for refund in queryset:
            try:
                service(refund=refund, actor=request.user)
                done += 1
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        if done:
            self.message_user(request, f"{done_text} {done} refund(s).", messages.SUCCESS)

    @admin.action(description="Retry selected failed refunds", permissions=["change"])
    def retry(self, request, queryset: QuerySet[Refund]):
        self._each(request, queryset, payment_services.refund_retry, "Retrying")

    @admin.action(description="Cancel selected refunds (not made)", permissions=["change"])
    def cancel(self, request, queryset: QuerySet[Refund]):
        self._each(request, queryset, payment_services.refund_cancel, "Cancelled")


@admin.register(Dispute)
class DisputeAdmin(ExportActionMixin, StepsAdminMixin, MoneyDisplayMixin, admin.ModelAdmin):
    """A queue: soonest evidence deadline first, with the time left."""

    export_report = "disputes"

    list_display = [
        "pk",
        "payment",
        "order",
        "amount_display",
        "reason",
        "status",
        "evidence_due_by",
        "time_left",
        "assignee",
        "is_due_soon",
        "is_overdue",
    ]
    list_filter = ["status", "reason", "is_due_soon", "is_overdue", "assignee"]
    search_fields = [
        "=payment__telegram_payment_charge_id",
        "=order__reference",
        "provider_reference",
    ]
    list_select_related = ["payment", "order", "assignee"]
    ordering = ["evidence_due_by", "id"]
    fields = [
        "payment",
        "order",
        "status",
        "reason",
        "amount_display",
        "fee_display",
        "provider_reference",
        "opened_at",
        "evidence_due_by",
        "evidence_submitted_at",
        "resolved_at",
        "assignee",
        "notes",
        "is_due_soon",
        "is_overdue",
        "reminded_at",
    ]
    readonly_fields = [f for f in fields if f not in ("assignee", "notes", "evidence_due_by")]
    step_views = (
        ("evidence", "evidence_view"),
        ("submit-evidence", "submit_evidence_view"),
        ("win", "win_view"),
        ("lose", "lose_view"),
        ("accept", "accept_view"),
    )

    @admin.display(description="Chargeback fee")
    def fee_display(self, obj: Dispute) -> str:
        return money.format_amount(obj.fee, obj.currency) if obj.fee else "—"

    @admin.display(description="Time left", ordering="evidence_due_by")
    def time_left(self, obj: Dispute) -> str:
        return disputes.time_left(obj)

    def has_add_permission(self, request):
        return False  # opened from the payment, with its amount checked

    def has_delete_permission(self, request, obj=None):
        return False

    def steps_for(self, request, obj):
        steps = []
        if request.user.has_perm("payments.view_dispute"):
            steps.append({"label": "Download evidence pack", "url": self.step_url(obj, "evidence")})
        if not request.user.has_perm("payments.change_dispute"):
            return steps
        if obj.status == Dispute.Status.OPEN:
            steps.append({"label": "Submit evidence", "url": self.step_url(obj, "submit-evidence")})
        if obj.is_open:
            steps += [
                {"label": "Won", "url": self.step_url(obj, "win")},
                {"label": "Lost", "url": self.step_url(obj, "lose")},
                {"label": "Accept chargeback", "url": self.step_url(obj, "accept")},
            ]
        return steps

    def evidence_view(self, request, object_id):
        if not request.user.has_perm("payments.view_dispute"):
            raise PermissionDenied
        dispute = get_object_or_404(
            Dispute.objects.select_related("payment__customer"), pk=object_id
        )
        name, content = evidence_pack(dispute)
        response = HttpResponse(content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def _step(self, request, object_id, *, title, service, submit_label, chargeback=False):
        dispute = get_object_or_404(Dispute, pk=object_id)

        def act(data):
            done = service(dispute=dispute, actor=request.user, **data)
            return f"Dispute #{done.pk} is now {done.get_status_display().lower()}."

        return self.run_step(
            request,
            dispute,
            permission="payments.change_dispute",
            title=f"{title}: dispute #{dispute.pk}",
            intro=(
                f"{money.format_amount(dispute.amount, dispute.currency)}, "
                f"{dispute.get_reason_display()}, status {dispute.get_status_display().lower()}."
            ),
            form_class=forms.ChargebackForm if chargeback else forms.DisputeStepForm,
            form_kwargs={"currency": dispute.currency} if chargeback else {},
            act=act,
            submit_label=submit_label,
        )

    def submit_evidence_view(self, request, object_id):
        return self._step(
            request,
            object_id,
            title="Evidence submitted",
            service=disputes.dispute_submit_evidence,
            submit_label="Mark evidence submitted",
        )

    def win_view(self, request, object_id):
        return self._step(
            request, object_id, title="Won", service=disputes.dispute_win, submit_label="Mark won"
        )

    def lose_view(self, request, object_id):
        return self._step(
            request,
            object_id,
            title="Lost",
            service=disputes.dispute_lose,
            submit_label="Mark lost and book the chargeback",
            chargeback=True,
        )

    def accept_view(self, request, object_id):
        return self._step(
            request,
            object_id,
            title="Accept the chargeback",
            service=disputes.dispute_accept,
            submit_label="Accept and book the chargeback",
            chargeback=True,
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ExportActionMixin, ReadOnlyAdminMixin, MoneyDisplayMixin, admin.ModelAdmin):
    """Append-only: nothing is added, changed or deleted here; corrections are new entries."""

    export_report = "ledger"

    list_display = ["created_at", "customer", "kind", "amount_display", "order", "memo"]
    list_filter = ["kind", CurrencyFilter]
    search_fields = [
        "=customer__telegram_id",
        "customer__username",
        "=order__reference",
        "=idempotency_key",
    ]
    list_select_related = ["customer", "order"]
    fields = ["created_at", "customer", "kind", "amount_display", "order", "payment", "refund",
              "dispute", "memo", "idempotency_key", "created_by"]  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False
    paginator = EstimatedCountPaginator
