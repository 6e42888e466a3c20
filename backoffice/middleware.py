"""Session lifetime and the second-factor gate."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse

# Paths reachable while signed in without a verified second factor.
_OTP_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/health/", "/webhooks/", "/api/")


class SessionLifetimeMiddleware:
    """End a session 12 hours after login however active it was.

    The idle limit (15 minutes) is the cookie age renewed on every request; this adds the
    absolute limit from the login time stored in the session at login.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get("login_at")
            if started is None:
                request.session["login_at"] = time.time()
            elif time.time() - started > settings.SESSION_ABSOLUTE_LIFETIME:
                logout(request)
                return redirect(f"{reverse('login')}?expired=1")
        return self.get_response(request)


class SecondFactorMiddleware:
    """Send a signed-in member of staff who has not passed the second factor to do so.

    Staff with a confirmed TOTP device must always enter a code. Staff without one are sent to
    enrol; when `OTP_REQUIRED` is off (the demo), they may skip enrolment for the session.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(_OTP_EXEMPT_PREFIXES)
            and not request.session.get("otp_skipped")
        ):
            from django_otp import user_has_device

            target = "otp_verify" if user_has_device(user) else "otp_enrol"
            return redirect(f"{reverse(target)}?next={request.get_full_path()}")
        return self.get_response(request)
