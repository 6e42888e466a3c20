"""The foundation's pages: saved filters, approvals, audit trail, staff, roles, brands."""

from django.urls import path

from . import views_filters

app_name = "backoffice"

urlpatterns = [
    path("saved-filters/", views_filters.saved_filter_create, name="savedfilter_create"),
    path(
        "saved-filters/<int:pk>/delete/",
        views_filters.saved_filter_delete,
        name="savedfilter_delete",
    ),
]
