"""Root URLs. Each app mounts under its own prefix; the foundation's pages under /admin-area/."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("health/", views.health, name="health"),
    path("search/", views.GlobalSearchView.as_view(), name="search"),
    path("accounts/", include("backoffice.urls_auth")),
    path("bo/", include("backoffice.urls_bo")),
    path("players/", include("players.urls")),
    path("payments/", include("payments.urls")),
    path("webhooks/", include("payments.urls_webhooks")),
    path("support/", include("support.urls")),
    path("bonuses/", include("bonuses.urls")),
    path("compliance/", include("compliance.urls")),
    path("games/", include("games.urls")),
    path("reporting/", include("reporting.urls")),
]

# The Django admin is off unless asked for: the back office's own pages are the UI, and the
# benchmarks switch it on to compare list pages with its changelist.
if settings.ENABLE_DJANGO_ADMIN:
    urlpatterns.append(path("django-admin/", admin.site.urls))

handler403 = "backoffice.views.error_403"
handler404 = "backoffice.views.error_404"
handler500 = "backoffice.views.error_500"
