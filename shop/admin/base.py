"""Pieces the shop's admins share."""

from django import forms
from django.contrib import admin

from core.admin.mixins import ReadOnlyInline
from shop.models import Product

__all__ = ["CurrencyFilter", "NoteForm", "ReadOnlyInline"]


class NoteForm(forms.Form):
    note = forms.CharField(required=False, max_length=255, help_text="Kept in the audit trail.")


class CurrencyFilter(admin.SimpleListFilter):
    """By currency, offering the catalog's currencies.

    Django's own filter for a plain field asks for its distinct values, which reads every
    row of a million-row table on every page; the catalog is a few rows.
    """

    title = "currency"
    parameter_name = "currency__exact"

    def lookups(self, request, model_admin):
        codes = set(Product.objects.values_list("currency", flat=True).distinct())
        if self.value():
            codes.add(self.value())
        return [(code, code) for code in sorted(codes)]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset
