"""Pieces the shop's admins share."""

from django import forms

from core.admin.mixins import ReadOnlyInline

__all__ = ["NoteForm", "ReadOnlyInline"]


class NoteForm(forms.Form):
    note = forms.CharField(required=False, max_length=255, help_text="Kept in the audit trail.")
