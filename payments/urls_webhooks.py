"""Public endpoints PSPs call, mounted at /webhooks/."""

from django.urls import path

from . import views_webhooks

urlpatterns = [
    path("psp/<slug:psp_code>/", views_webhooks.psp_webhook, name="psp_webhook"),
]
