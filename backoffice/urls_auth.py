"""Sign-in pages under /accounts/: exempt from the second-factor gate, each checks itself."""

from django.urls import path

from . import auth_views as views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("otp/enrol/", views.otp_enrol, name="otp_enrol"),
    path("otp/verify/", views.otp_verify, name="otp_verify"),
    path("otp/replace/", views.otp_reset, name="otp_reset"),
    path("password/", views.password_change, name="password_change"),
]
