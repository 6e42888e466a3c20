"""Staff, roles and brands under /bo/ (URL names in the `backoffice:` namespace)."""

from django.urls import path

from . import staff_views as views

urlpatterns = [
    path("staff/", views.StaffListView.as_view(), name="staff_list"),
    path("staff/new/", views.StaffCreateView.as_view(), name="staff_create"),
    path("staff/<int:pk>/", views.StaffDetailView.as_view(), name="staff_detail"),
    path("staff/<int:pk>/edit/", views.StaffEditView.as_view(), name="staff_edit"),
    path(
        "staff/<int:pk>/deactivate/", views.StaffDeactivateView.as_view(), name="staff_deactivate"
    ),
    path(
        "staff/<int:pk>/reactivate/", views.StaffReactivateView.as_view(), name="staff_reactivate"
    ),
    path(
        "staff/<int:pk>/reset-second-factor/",
        views.StaffResetOTPView.as_view(),
        name="staff_reset_otp",
    ),
    path("staff/<int:pk>/password/", views.StaffPasswordView.as_view(), name="staff_password"),
    path(
        "staff/<int:pk>/end-sessions/",
        views.StaffEndSessionsView.as_view(),
        name="staff_end_sessions",
    ),
    path("staff/<int:pk>/unlock/", views.StaffUnlockView.as_view(), name="staff_unlock"),
    path("roles/", views.RoleListView.as_view(), name="role_list"),
    path("roles/new/", views.RoleCreateView.as_view(), name="role_create"),
    path("roles/<int:pk>/", views.RoleDetailView.as_view(), name="role_detail"),
    path("roles/<int:pk>/edit/", views.RoleEditView.as_view(), name="role_edit"),
    path("brands/", views.BrandListView.as_view(), name="brand_list"),
    path("brands/new/", views.BrandCreateView.as_view(), name="brand_create"),
    path("brands/<int:pk>/", views.BrandDetailView.as_view(), name="brand_detail"),
    path("brands/<int:pk>/edit/", views.BrandEditView.as_view(), name="brand_edit"),
    path("brands/<int:pk>/grant/", views.BrandGrantView.as_view(), name="brand_grant"),
    path(
        "brands/<int:pk>/revoke/<int:user_pk>/",
        views.BrandRevokeView.as_view(),
        name="brand_revoke",
    ),
]
