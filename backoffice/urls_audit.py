"""The audit trail and the four-eyes pages, under /bo/ in the `backoffice` namespace."""

from django.urls import path

from . import approval_views, audit_views

urlpatterns = [
    path("audit/", audit_views.AuditEventListView.as_view(), name="audit_list"),
    path("audit/<int:pk>/", audit_views.AuditEventDetailView.as_view(), name="audit_detail"),
    path("approvals/", approval_views.ApprovalRequestListView.as_view(), name="approval_list"),
    path(
        "approvals/<int:pk>/",
        approval_views.ApprovalRequestDetailView.as_view(),
        name="approval_detail",
    ),
    path(
        "approvals/<int:pk>/approve/",
        approval_views.ApprovalApproveView.as_view(),
        name="approval_approve",
    ),
    path(
        "approvals/<int:pk>/reject/",
        approval_views.ApprovalRejectView.as_view(),
        name="approval_reject",
    ),
    path(
        "approvals/<int:pk>/cancel/",
        approval_views.ApprovalCancelView.as_view(),
        name="approval_cancel",
    ),
]
