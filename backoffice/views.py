"""The shell's own pages: home dashboard, global search, health, error pages."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.vary import vary_on_headers
from django.views.generic import TemplateView

from .dashboard import counters_for
from .search import search_all
from .views_base import ExplainedHttp404, StaffRequiredMixin


class HomeView(StaffRequiredMixin, TemplateView):
    """The queues this user's roles work, with their counts."""

    template_name = "backoffice/home.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title="Home", counters=counters_for(self.request.user), **kwargs
        )


# One URL, two bodies (page or results fragment): the back button must not show the fragment.
@method_decorator(vary_on_headers("HX-Request"), name="dispatch")
class GlobalSearchView(StaffRequiredMixin, TemplateView):
    """Players, payments, tickets and staff by id, email, username, phone or reference."""

    template_name = "backoffice/search.html"

    def get_context_data(self, **kwargs):
        query = self.request.GET.get("q", "")[:200]
        hits = search_all(self.request.user, query) if query.strip() else []
        return super().get_context_data(title="Search", query=query, hits=hits, **kwargs)

    def get_template_names(self):
        if self.request.htmx:
            return ["backoffice/search.html#results"]
        return [self.template_name]


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return False, type(exc).__name__


def _check_redis() -> tuple[bool, str]:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        return True, "ok"
    except Exception as exc:  # noqa: BLE001
        return False, type(exc).__name__


def _check_workers() -> tuple[bool, str]:
    from .celery import app

    try:
        replies = app.control.inspect(timeout=1.0).ping() or {}
    except Exception as exc:  # noqa: BLE001
        return False, type(exc).__name__
    if not replies:
        return False, "no worker answered"
    return True, f"{len(replies)} worker(s)"


def health(request):
    """Database, Redis and Celery workers; 200 when all answer, 503 otherwise.

    Public on purpose (load balancers call it), so it names no host, version or error text.
    """
    checks = {"database": _check_database(), "redis": _check_redis()}
    if checks["redis"][0]:
        checks["workers"] = _check_workers()
    else:
        checks["workers"] = (False, "redis unavailable")
    healthy = all(ok for ok, _ in checks.values())
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
        },
        status=200 if healthy else 503,
    )


def error_403(request, exception=None):
    message = str(exception) if exception and str(exception) else "You do not have access to this."
    return render(
        request, "errors/403.html", {"title": "Not allowed", "message": message}, status=403
    )


def error_404(request, exception=None):
    message = str(exception) if isinstance(exception, ExplainedHttp404) else ""
    return render(
        request, "errors/404.html", {"title": "Not found", "message": message}, status=404
    )


def error_500(request):
    return render(request, "errors/500.html", {"title": "Something went wrong"}, status=500)
