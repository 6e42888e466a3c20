"""Payments pages, mounted at /payments/."""

from django.urls import include, path

from . import views

app_name = "payments"

urlpatterns = [
    path("transactions/", views.PaymentListView.as_view(), name="transaction_list"),
    path("transactions/<int:pk>/", views.PaymentDetailView.as_view(), name="transaction_detail"),
    path(
        "transactions/<int:pk>/<slug:operation>/",
        views.DepositCorrectionView.as_view(),
        name="deposit_correction",
    ),
    path("ledger/", views.LedgerEntryListView.as_view(), name="entry_list"),
    path(
        "ledger/transactions/<int:pk>/",
        views.LedgerTransactionDetailView.as_view(),
        name="ledger_transaction_detail",
    ),
    path(
        "ledger/transactions/<int:pk>/reverse/",
        views.LedgerReversalView.as_view(),
        name="ledger_reversal",
    ),
    path("accounts/", views.AccountListView.as_view(), name="account_list"),
    path(
        "players/<int:pk>/adjust/", views.AdjustmentCreateView.as_view(), name="adjustment_create"
    ),
    path("psps/", views.PaymentMethodListView.as_view(), name="psp_list"),
    path("psps/<int:pk>/switch/", views.PspSwitchView.as_view(), name="psp_switch"),
    path("methods/<int:pk>/switch/", views.MethodSwitchView.as_view(), name="method_switch"),
    path("callbacks/", views.PspEventListView.as_view(), name="event_list"),
    path("callbacks/refused/", views.RejectionListView.as_view(), name="rejection_list"),
    path("thresholds/", views.ThresholdListView.as_view(), name="threshold_list"),
    path("thresholds/<str:currency>/", views.ThresholdEditView.as_view(), name="threshold_edit"),
    path("", include("payments.urls_queue")),  # withdrawal queue, risk policies, reconciliation
]
