"""The withdrawal queue, risk policies and reconciliation pages, mounted with the payments
pages at /payments/ (names in the `payments` namespace)."""

from django.urls import path

from . import views_queue as q
from . import views_reconciliation as r

urlpatterns = [
    # the withdrawal queue
    path("withdrawals/queue/", q.WithdrawalQueueView.as_view(), name="withdrawal_queue"),
    path("withdrawals/queue/counts/", q.QueueCountsView.as_view(),
         name="withdrawal_queue_counts"),
    path("withdrawals/queue/bulk-approve/", q.BulkApproveView.as_view(),
         name="withdrawal_bulk_approve"),
    path("withdrawals/<int:pk>/review/", q.WithdrawalReviewView.as_view(),
         name="withdrawal_review"),
    path("withdrawals/<int:pk>/actions/", q.ActionsCellView.as_view(),
         name="withdrawal_actions"),
    path("withdrawals/<int:pk>/claim/", q.ClaimView.as_view(), name="withdrawal_claim"),
    path("withdrawals/<int:pk>/release/", q.ReleaseView.as_view(), name="withdrawal_release"),
    path("withdrawals/<int:pk>/approve/", q.ApproveView.as_view(), name="withdrawal_approve"),
    path("withdrawals/<int:pk>/hold/", q.HoldView.as_view(), name="withdrawal_hold"),
    path("withdrawals/<int:pk>/reject/", q.RejectView.as_view(), name="withdrawal_reject"),
    # risk policies and approval limits
    path("risk-policies/", q.RiskPolicyListView.as_view(), name="risk_policy_list"),
    path("risk-policies/new/", q.RiskPolicyEditView.as_view(), name="risk_policy_create"),
    path("risk-policies/<int:pk>/", q.RiskPolicyEditView.as_view(), name="risk_policy_edit"),
    path("approver-limits/", q.ApproverLimitView.as_view(), name="approver_limit_edit"),
    # reconciliation
    path("reconciliation/", r.ReportListView.as_view(), name="reconciliation_list"),
    path("reconciliation/upload/", r.ReportUploadView.as_view(), name="reconciliation_upload"),
    path("reconciliation/<int:pk>/", r.ReportDetailView.as_view(),
         name="reconciliation_detail"),
    path("reconciliation/<int:pk>/progress/", r.ReportProgressView.as_view(),
         name="reconciliation_progress"),
    path("reconciliation/<int:pk>/rerun/", r.ReportRerunView.as_view(),
         name="reconciliation_rerun"),
    path("reconciliation/exceptions/", r.ExceptionListView.as_view(),
         name="reconciliation_exception_list"),
    path("reconciliation/exceptions/<int:pk>/", r.ExceptionDetailView.as_view(),
         name="reconciliation_exception_detail"),
    path("reconciliation/exceptions/<int:pk>/resolve/", r.ExceptionResolveView.as_view(),
         name="reconciliation_exception_resolve"),
    path("reconciliation/exceptions/<int:pk>/adjust/", r.ExceptionAdjustView.as_view(),
         name="reconciliation_exception_adjust"),
]  # fmt: skip
