"""Saved filters: a list page's query string kept under a name, per member of staff."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .forms import SavedFilterForm
from .models import SavedFilter
from .services_filters import do_delete_saved_filter, do_save_filter


def _back(request):
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = "/"
    return redirect(target)


@login_required
@require_POST
def saved_filter_create(request):
    form = SavedFilterForm(request.POST)
    if form.is_valid():
        do_save_filter(acting_user=request.user, **form.cleaned_data)
        messages.success(request, f"Saved filter “{form.cleaned_data['name']}”.")
    else:
        messages.error(request, "The filter was not saved: " + "; ".join(
            f"{k}: {' '.join(v)}" for k, v in form.errors.items()
        ))  # fmt: skip
    return _back(request)


@login_required
@require_POST
def saved_filter_delete(request, pk: int):
    saved = get_object_or_404(SavedFilter, pk=pk, user=request.user)
    do_delete_saved_filter(saved, acting_user=request.user)
    messages.success(request, f"Deleted saved filter “{saved.name}”.")
    return _back(request)
