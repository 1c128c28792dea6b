"""Finance reports in the admin: the report form, background jobs and their files, and the
changelists' "Export as CSV" action. Only finance staff (payments.export_reports) see any of it.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.errors import DomainError
from payments import exports, reports
from payments.forms_reports import ReportForm, params_sentence
from payments.models import ExportJob

EXPORT_PERMISSION = "payments.export_reports"


def can_export(request) -> bool:
    return request.user.has_perm(EXPORT_PERMISSION)


def _stream(report: str, chunks, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        (chunk.encode("utf-8") for chunk in chunks), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_action(report: str):
    """The changelist's "Export as CSV": what the current filters (or selection) show."""

    @admin.action(description="Export as CSV", permissions=["export"])
    def export_csv(modeladmin, request, queryset):
        if not can_export(request):
            raise PermissionDenied
        return _stream(report, reports.queryset_csv(report, queryset), f"{report}.csv")

    return export_csv


class ExportActionMixin:
    """The changelist's "Export as CSV" action for `export_report`, for finance staff only."""

    export_report = ""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.export_report and can_export(request):
            action = export_action(self.export_report)
            actions["export_csv"] = (action, "export_csv", action.short_description)
        return actions

    def has_export_permission(self, request) -> bool:
        return can_export(request)


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    """Finance reports: a form to run one, the jobs with their progress, their files."""

    list_display = ["pk", "report", "period", "status", "progress_bar", "row_count", "created_by",
                    "created_at", "download"]  # fmt: skip
    list_filter = ["status", "report"]
    readonly_fields = ["description", "status", "row_count", "total_estimate", "error",
                       "created_by", "created_at", "started_at", "finished_at", "expires_at"]  # fmt: skip
    fields = readonly_fields

    def has_module_permission(self, request):
        return can_export(request)

    def has_view_permission(self, request, obj=None):
        return can_export(request)

    def has_add_permission(self, request):
        return can_export(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<int:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="payments_exportjob_download",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Period")
    def period(self, obj: ExportJob) -> str:
        return f"{obj.params.get('since')} – {obj.params.get('until')} ({obj.params.get('tz')})"

    @admin.display(description="What")
    def description(self, obj: ExportJob) -> str:
        return params_sentence(obj.report, obj.params)

    @admin.display(description="Progress")
    def progress_bar(self, obj: ExportJob) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}%', obj.progress, obj.progress
        )

    @admin.display(description="File")
    def download(self, obj: ExportJob) -> str:
        if obj.status != ExportJob.Status.DONE or not obj.file:
            return "—"
        url = reverse("admin:payments_exportjob_download", args=[obj.pk])
        return format_html('<a href="{}">Download</a>', url)

    def add_view(self, request, form_url="", extra_context=None):
        """The Finance reports form: download at once, or run as a background job."""
        if not can_export(request):
            raise PermissionDenied
        form = ReportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            params = form.params()
            try:
                if "_download" in request.POST:
                    filters = exports.filters_from_params(params)
                    return _stream(
                        form.cleaned_data["report"],
                        reports.report_csv(form.cleaned_data["report"], filters, bom=params["bom"]),
                        f"{form.cleaned_data['report']}-{params['since']}-{params['until']}.csv",
                    )
                job = exports.export_start(
                    report=form.cleaned_data["report"], params=params, user=request.user
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"Export #{job.pk} started.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:payments_exportjob_change", args=[job.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "New finance report",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/payments/report_form.html", context)

    def download_view(self, request, object_id):
        if not can_export(request):
            raise PermissionDenied
        job = get_object_or_404(ExportJob, pk=object_id)
        if job.status != ExportJob.Status.DONE or not job.file:
            return self._no_file(
                request, job, "This export has no file (not finished, or expired)."
            )
        try:
            handle = job.file.open("rb")
        except FileNotFoundError:
            return self._no_file(
                request,
                job,
                f"The file of export #{job.pk} is not in the shared file storage (MEDIA_ROOT): "
                "the worker that wrote it does not share it with this web server, or it was "
                "removed. Run the report again.",
            )
        return FileResponse(
            handle,
            as_attachment=True,
            filename=job.file.name.rsplit("/", 1)[-1],
            content_type="text/csv; charset=utf-8",
        )

    def _no_file(self, request, job: ExportJob, message: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"Export #{job.pk}: no file",
            "message": message,
            "back_url": reverse("admin:payments_exportjob_change", args=[job.pk]),
            "back_label": f"Export #{job.pk}",
        }
        return TemplateResponse(request, "admin/core/not_found.html", context, status=404)
