"""Staff steps as small admin pages: a button on the change page, a form, one service call.

A refused step (the service raises DomainError) shows its reason and changes nothing; a step
the user has no permission for answers 403. A step done is written to Django's admin log
(*Recent actions*), and lands where the work continues: `act` returns the message, or the
message and the page to go to (the refund just recorded, the dispute just opened).
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.errors import DomainError


class StepsAdminMixin:
    change_form_template = "admin/core/change_form_with_steps.html"
    # (url name suffix, view method name)
    step_views: tuple[tuple[str, str], ...] = ()

    def _step_name(self, name: str) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_{name.replace('-', '_')}"

    def get_urls(self):
        extra = [
            path(
                f"<int:object_id>/{name}/",
                self.admin_site.admin_view(getattr(self, view)),
                name=self._step_name(name),
            )
            for name, view in self.step_views
        ]
        return extra + super().get_urls()

    def step_url(self, obj, name: str) -> str:
        return reverse(f"admin:{self._step_name(name)}", args=[obj.pk])

    def steps_for(self, request: HttpRequest, obj) -> list[dict[str, str]]:
        return []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context["steps"] = self.steps_for(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def change_url(self, obj) -> str:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])

    def run_step(
        self,
        request: HttpRequest,
        obj,
        *,
        permission: str,
        title: str,
        form_class,
        act: Callable[[dict[str, Any]], str | tuple[str, Any]],
        submit_label: str,
        intro: str = "",
        form_kwargs: dict[str, Any] | None = None,
        done_url: str | None = None,
    ) -> HttpResponse:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        form_kwargs = form_kwargs or {}
        if request.method == "POST":
            form = form_class(request.POST, **form_kwargs)
            if form.is_valid():
                try:
                    done = act(form.cleaned_data)
                except DomainError as error:
                    self.message_user(request, error.message, messages.ERROR)
                else:
                    landing = None
                    if isinstance(done, tuple):
                        done, landing = done
                    self.log_change(request, obj, f"{title}: {done}")
                    self.message_user(request, done, messages.SUCCESS)
                    url = self.change_url(landing) if landing is not None else done_url
                    return HttpResponseRedirect(url or self.change_url(obj))
        else:
            form = form_class(**form_kwargs)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subject": str(obj),
            "back_url": self.change_url(obj),
            "form": form,
            "intro": intro,
            "submit_label": submit_label,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/core/step_form.html", context)
