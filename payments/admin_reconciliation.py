"""Reconciliation in the admin: the page per provider and day, the differences and their
steps, what Telegram and A-Pay recorded, statement uploads, and "Check at A-Pay"."""

import calendar
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core import money
from core.admin.mixins import ReadOnlyAdminMixin, ReadOnlyInline, RecordAdminMixin, folded_json
from core.admin.steps import StepsAdminMixin
from core.errors import DomainError
from payments import forms
from payments import services as payment_services
from payments.apay import client
from payments.models import (
    Difference,
    Payment,
    StarBalanceSnapshot,
    StarTransaction,
    StatementImport,
    StatementRow,
)
from payments.reconciliation import reconciliation_days
from payments.reports import days_window
from payments.services import stars_reconciliation, statements
from shop import publish

IMPORT_PERMISSION = "payments.import_statement"
RECONCILE_STARS_TASK = "botbridge.reconcile_stars"


def _amount(value: int | None, currency: str) -> str:
    return "—" if value is None else money.format_amount(value, currency)


def _admin_link(obj, text: str | None = None) -> str:
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


@admin.register(Difference)
class DifferenceAdmin(StepsAdminMixin, RecordAdminMixin, admin.ModelAdmin):
    """What the providers recorded and our books do not say (or the other way round)."""

    list_display = ["occurred_at", "provider_short", "kind", "status", "ours", "theirs",
                    "about"]  # fmt: skip
    list_filter = ["status", "provider", "kind"]
    date_hierarchy = "occurred_at"
    search_fields = ["=payment__telegram_payment_charge_id",
                     "=payment__provider_payment_charge_id", "=statement_row__transaction_id",
                     "=star_transaction__transaction_id", "=statement_row__order_id"]  # fmt: skip
    search_help_text = "A charge id, A-Pay order_id or transaction_id, exactly."
    list_select_related = ["payment", "statement_row", "star_transaction", "refund"]
    fields = ["provider", "kind", "status", "occurred_at", "ours", "theirs", "detail",
              "payment_link", "refund_link", "star_transaction_link", "statement_row_link",
              "detected_at", "resolved_at", "resolved_by", "resolution"]  # fmt: skip
    readonly_fields = fields
    step_views = (("resolve", "resolve_view"), ("record", "record_view"),
                  ("confirm", "confirm_view"))  # fmt: skip

    def has_change_permission(self, request, obj=None):
        return False  # the steps below are the only way to change one

    @admin.display(description="Provider", ordering="provider")
    def provider_short(self, obj: Difference) -> str:
        return "Stars" if obj.provider == Payment.Provider.STARS else "A-Pay"

    @admin.display(description="Ours")
    def ours(self, obj: Difference) -> str:
        return _amount(obj.our_amount, obj.currency)

    @admin.display(description="Theirs")
    def theirs(self, obj: Difference) -> str:
        return _amount(obj.their_amount, obj.currency)

    @admin.display(description="About")
    def about(self, obj: Difference) -> str:
        if obj.payment_id:
            return _admin_link(obj.payment, obj.payment.telegram_payment_charge_id)
        if obj.statement_row_id:
            return _admin_link(obj.statement_row, f"A-Pay {obj.statement_row.transaction_id}")
        if obj.star_transaction_id:
            return _admin_link(obj.star_transaction, obj.star_transaction.transaction_id)
        return obj.detail[:60]

    @admin.display(description="Payment")
    def payment_link(self, obj):
        return _admin_link(obj.payment)

    @admin.display(description="Refund")
    def refund_link(self, obj):
        return _admin_link(obj.refund)

    @admin.display(description="Telegram's transaction")
    def star_transaction_link(self, obj):
        return _admin_link(obj.star_transaction)

    @admin.display(description="A-Pay's statement row")
    def statement_row_link(self, obj):
        return _admin_link(obj.statement_row)

    def get_urls(self):
        page = path(
            "reconciliation/",
            self.admin_site.admin_view(self.reconciliation_view),
            name="payments_difference_reconciliation",
        )
        return [page, *super().get_urls()]

    change_list_template = "admin/payments/difference/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "title": "Reconciliation differences",
            "reconciliation_url": reverse("admin:payments_difference_reconciliation"),
        }
        return super().changelist_view(request, extra_context)

    def steps_for(self, request, obj: Difference):
        if not obj.is_open or not request.user.has_perm("payments.change_difference"):
            return []
        steps = [{"label": "Resolve with a note", "url": self.step_url(obj, "resolve")}]
        tx = obj.star_transaction
        if obj.kind == Difference.Kind.MISSING_HERE and tx is not None and tx.payment_id is None:
            steps.insert(0, {"label": "Record the payment", "url": self.step_url(obj, "record")})
        if obj.kind == Difference.Kind.WEAK_MATCH and obj.statement_row_id:
            steps.insert(0, {"label": "Confirm the match", "url": self.step_url(obj, "confirm")})
        return steps

    def _difference(self, object_id) -> Difference:
        return get_object_or_404(Difference, pk=object_id)

    def resolve_view(self, request, object_id):
        difference = self._difference(object_id)

        def act(data):
            payment_services.difference_resolve(
                difference=difference, note=data["note"], actor=request.user
            )
            return "Resolved."

        return self.run_step(
            request,
            difference,
            permission="payments.change_difference",
            title=f"Resolve: {difference}",
            intro=difference.detail,
            form_class=forms.ResolveForm,
            act=act,
            submit_label="Resolve",
        )

    def record_view(self, request, object_id):
        difference = self._difference(object_id)
        tx = difference.star_transaction
        if tx is None:
            raise Http404("This difference has no Telegram transaction.")

        def act(data):
            payment = stars_reconciliation.star_payment_record(
                star_transaction=tx, actor=request.user
            )
            if payment.needs_review:
                return (
                    f"Recorded as payment {payment}, held for review: "
                    f"{payment.get_review_reason_display()}. Nothing is credited until it is "
                    "sorted out.",
                    payment,
                )
            return f"Recorded as payment {payment}; it is credited once, as any payment.", payment

        return self.run_step(
            request,
            difference,
            permission="payments.change_difference",
            title=f"Record the payment: {difference}",
            intro=(
                f"Telegram took {_amount(difference.their_amount, difference.currency)} "
                f"({difference.detail}) and the bot never heard of it. Recording it matches it "
                "to its order by the invoice payload and credits it once, like any payment."
            ),
            form_class=forms.ConfirmForm,
            act=act,
            submit_label="Record the payment",
        )

    def confirm_view(self, request, object_id):
        difference = self._difference(object_id)
        row = difference.statement_row
        if row is None or row.payment is None:
            raise Http404("This difference has no matched statement row.")

        def act(data):
            statements.statement_match_confirm(row=row, actor=request.user)
            return "Match confirmed; A-Pay's fee is posted."

        return self.run_step(
            request,
            difference,
            permission="payments.change_difference",
            title=f"Confirm the match: {difference}",
            intro=(
                f"A-Pay's transaction {row.transaction_id} "
                f"({_amount(row.amount, row.currency)}, {row.created_at:%Y-%m-%d %H:%M} UTC) was "
                f"matched to payment {row.payment} by amount and time only."
            ),
            form_class=forms.ConfirmForm,
            act=act,
            submit_label="Confirm the match",
        )

    # --- the page ------------------------------------------------------------------------

    def reconciliation_view(self, request):
        if not request.user.has_perm("payments.view_difference"):
            raise PermissionDenied
        provider = request.GET.get("provider") or Payment.Provider.STARS
        if provider not in Payment.Provider.values:
            provider = Payment.Provider.STARS
        month = _month(request.GET.get("month"))
        tz = ZoneInfo(settings.TIME_ZONE)
        last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
        start, end = days_window(month, last, tz)
        here = reverse("admin:payments_difference_reconciliation")
        back = f"{here}?provider={provider}&month={month:%Y-%m}"
        upload, fetch = forms.StatementUploadForm(), forms.StatementFetchForm(
            initial={"since": timezone.localdate() - timedelta(days=3),
                     "until": timezone.localdate() - timedelta(days=1)}
        )  # fmt: skip
        if request.method == "POST":
            if not request.user.has_perm(IMPORT_PERMISSION):
                raise PermissionDenied
            done, upload, fetch = self._page_action(request, tz)
            if done:
                return HttpResponseRedirect(back)
        days = reconciliation_days(provider=provider, start=start, end=end, tz=tz)
        context = {
            **self.admin_site.each_context(request),
            "title": "Reconciliation",
            "opts": self.model._meta,
            "time_zone": settings.TIME_ZONE,
            "provider": provider,
            "providers": Payment.Provider.choices,
            "month": month,
            "previous": (month - timedelta(days=1)).replace(day=1),
            "next": last + timedelta(days=1),
            "days": days,
            "all_match": all(d.matches and not d.open_differences for d in days),
            "open_count": Difference.objects.filter(
                provider=provider, status=Difference.Status.OPEN
            ).count(),
            "differences_url": reverse("admin:payments_difference_changelist"),
            "can_import": request.user.has_perm(IMPORT_PERMISSION),
            "upload_form": upload,
            "fetch_form": fetch,
            "reports_configured": client.reports_configured(),
            "imports": StatementImport.objects.filter(provider=provider)[:5],
        }
        if provider == Payment.Provider.STARS:
            context["statement"] = stars_reconciliation.stars_statement(start=start, end=end)
            snapshot = StarBalanceSnapshot.objects.first()
            context["snapshot"] = snapshot
            if snapshot is not None:
                context["snapshot_text"] = stars_reconciliation.stars_text(snapshot.reported_nanos)
        return TemplateResponse(request, "admin/payments/reconciliation.html", context)

    def _page_action(self, request, tz: ZoneInfo):
        """The page's buttons: run the Stars reconciliation, upload or fetch a statement."""
        upload, fetch = forms.StatementUploadForm(), forms.StatementFetchForm()
        try:
            if "_run_stars" in request.POST:
                publish.publish(RECONCILE_STARS_TASK, [()])
                self.message_user(request, "Stars reconciliation started.", messages.SUCCESS)
                return True, upload, fetch
            if "_upload" in request.POST:
                upload = forms.StatementUploadForm(request.POST, request.FILES)
                if upload.is_valid():
                    result = _import_upload(request, upload)
                    self._done(request, result)
                    return True, upload, fetch
            if "_fetch" in request.POST:
                fetch = forms.StatementFetchForm(request.POST)
                if fetch.is_valid():
                    data = fetch.cleaned_data
                    start, end = days_window(data["since"], data["until"], tz)
                    results = statements.statement_fetch_import(
                        start=start,
                        end=end,
                        user=request.user,
                    )
                    for result in results:
                        self._done(request, result)
                    return True, upload, fetch
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        return False, upload, fetch

    def _done(self, request, result: statements.ImportResult) -> None:
        if not result.already:
            self.log_addition(request, result.statement, f"Imported: {result.summary()}")
        self.message_user(
            request,
            f"Statement #{result.statement.pk}: {result.summary()}",
            messages.WARNING if result.already else messages.SUCCESS,
        )


def _month(text: str | None) -> date:
    try:
        return datetime.strptime(text or "", "%Y-%m").date()
    except ValueError:
        return timezone.localdate().replace(day=1)


def _import_upload(request, form: forms.StatementUploadForm) -> statements.ImportResult:
    uploaded = form.cleaned_data["file"]
    with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
    try:
        return statements.statement_import(
            path=Path(handle.name),
            source=StatementImport.Source.UPLOAD,
            filename=uploaded.name,
            currency=form.cleaned_data["currency"] or settings.APAY_STATEMENT_CURRENCY,
            user=request.user,
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)


@admin.register(StarTransaction)
class StarTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The bot's Telegram Stars transactions, as getStarTransactions listed them."""

    list_display = ["date", "transaction_id", "direction", "kind", "stars", "user_id",
                    "payment", "refund"]  # fmt: skip
    list_filter = ["kind", "direction"]
    date_hierarchy = "date"
    search_fields = ["=transaction_id", "=user_id"]
    list_select_related = ["payment", "refund"]
    fields = ["transaction_id", "direction", "kind", "stars", "date", "partner_type",
              "transaction_type", "user_id", "invoice_payload", "payment", "refund", "position",
              "fetched_at", "raw_display"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Stars", ordering="amount")
    def stars(self, obj: StarTransaction) -> str:
        return stars_reconciliation.stars_text(abs(obj.signed_nanos))

    @admin.display(description="As Telegram listed it")
    def raw_display(self, obj):
        return folded_json(obj.raw)


@admin.register(StatementImport)
class StatementImportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Statements taken in: who, from where, what each changed."""

    list_display = ["pk", "created_at", "source", "filename", "rows_total", "rows_new",
                    "rows_changed", "period_start", "period_end", "imported_by"]  # fmt: skip
    list_filter = ["source"]
    fields = ["provider", "source", "filename", "sha256", "rows_total", "rows_new",
              "rows_changed", "period_start", "period_end", "imported_by", "created_at"]  # fmt: skip
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        url = reverse("admin:payments_difference_reconciliation") + "?provider=apay"
        extra_context = {**(extra_context or {}), "subtitle": None, "upload_url": url}
        return super().changelist_view(request, extra_context)


class StatementMoneyMixin:
    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: StatementRow) -> str:
        return money.format_amount(obj.amount, obj.currency)

    @admin.display(description="A-Pay's fee", ordering="fee")
    def fee_display(self, obj: StatementRow) -> str:
        return money.format_amount(obj.fee, obj.currency)


@admin.register(StatementRow)
class StatementRowAdmin(StatementMoneyMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """A-Pay's own record of each deposit, from its statements."""

    list_display = ["created_at", "transaction_id", "order_id", "amount_display", "fee_display",
                    "status", "match", "payment"]  # fmt: skip
    list_filter = ["status", "match", "currency"]
    date_hierarchy = "created_at"
    search_fields = ["=transaction_id", "=order_id"]
    list_select_related = ["payment"]
    fields = ["transaction_id", "order_id", "custom_transaction_id", "custom_user_id",
              "amount_display", "fee_display", "status", "created_at", "updated_at",
              "activated_at", "payment", "match", "fee_posted", "statement"]  # fmt: skip
    readonly_fields = fields


class DifferenceInline(ReadOnlyInline):
    """On a payment's page: what reconciliation found about it."""

    model = Difference
    fk_name = "payment"
    fields = ["kind", "status", "occurred_at", "detail", "resolution"]
    readonly_fields = fields
    verbose_name_plural = "reconciliation differences"


class StatementRowInline(StatementMoneyMixin, ReadOnlyInline):
    """On a payment's page: A-Pay's own record of it, from its statements."""

    model = StatementRow
    fields = ["transaction_id", "status", "amount_display", "fee_display", "match", "created_at"]
    readonly_fields = fields
    verbose_name_plural = "A-Pay's statement"


def _utc(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _utc_text(text: str) -> str:
    """A-Pay's ISO 8601 time as ours reads; anything else as A-Pay gave it."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text or "—"
    return _utc(value if value.tzinfo else value.replace(tzinfo=UTC))


def apay_check_view(model_admin, request, object_id):
    """ "Check at A-Pay" on a payment: A-Pay's deposit-info beside our record."""
    if not request.user.has_perm("payments.view_payment"):
        raise PermissionDenied
    payment = get_object_or_404(Payment, pk=object_id, provider=Payment.Provider.APAY)
    info, error = None, ""
    try:
        info = client.deposit_info(order_id=payment.provider_payment_charge_id)
    except DomainError as failure:
        error = failure.message
    rows = []
    if info is not None:
        ours_amount = money.format_amount(payment.amount, payment.currency)
        theirs_amount = _amount(info.amount, info.currency or payment.currency)
        rows = [
            ("Order id", payment.provider_payment_charge_id, info.order_id, True),
            ("Status", "Paid" + (", credited" if payment.credited_at else ""), info.status,
             info.status == StatementRow.SUCCESS),
            ("Amount", ours_amount, theirs_amount,
             (info.amount, info.currency) == (payment.amount, payment.currency)),
            ("Time", _utc(payment.paid_at), _utc_text(info.created_at), True),
            ("Payment system", "Telegram Payments", info.payment_system or "—", True),
        ]  # fmt: skip
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Check at A-Pay: {payment}",
        "payment": payment,
        "back_url": reverse("admin:payments_payment_change", args=[payment.pk]),
        "rows": rows,
        "error": error,
        "checked_at": timezone.now(),
        "opts": Payment._meta,
    }
    return TemplateResponse(request, "admin/payments/apay_check.html", context)
