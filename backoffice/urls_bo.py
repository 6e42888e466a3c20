"""The foundation's pages under /bo/: saved filters here; staff, roles and brands in
`urls_staff.py`; audit trail and approvals in `urls_audit.py`."""

from django.urls import include, path

from . import views_filters

app_name = "backoffice"

urlpatterns = [
    path("saved-filters/", views_filters.saved_filter_create, name="savedfilter_create"),
    path(
        "saved-filters/<int:pk>/delete/",
        views_filters.saved_filter_delete,
        name="savedfilter_delete",
    ),
    path("", include("backoffice.urls_staff")),
    path("", include("backoffice.urls_audit")),
]
