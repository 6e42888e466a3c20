"""Session lifetime and the sign-in gate (second factor, then a password of one's own)."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from . import permission_cache

# Paths reachable while signed in without a verified second factor. The sign-in pages under
# /accounts/ check what they need themselves (see auth_views).
_OTP_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/health/", "/webhooks/", "/api/")


def _redirect(request, url: str):
    """A redirect that also works for htmx requests (which would swap a login page in)."""
    if getattr(request, "htmx", False) or request.headers.get("HX-Request") == "true":
        return HttpResponseClientRedirect(url)
    return redirect(url)


def forget_session(request) -> None:
    """Log out and drop the session's tracking row (the session itself is flushed)."""
    from .models import StaffSession

    key = request.session.session_key
    if key:
        StaffSession.objects.filter(session_key=key).delete()
    logout(request)


# How often an active session's expiry is pushed forward (a write of the session row).
SESSION_REFRESH_INTERVAL = 60  # seconds


class SessionLifetimeMiddleware:
    """End a session after 15 minutes without a request, and 12 hours after login however
    active it was; and give the request the user's permissions and brands from the session.

    The idle limit is the session's age (`SESSION_COOKIE_AGE`), enforced by the session store:
    an idle session's row has expired. Saving the row on every request to push that expiry
    forward would cost a write per page, so it is saved when the last push is a minute old:
    a session then ends between 14 and 15 minutes after its last request, never later. The
    absolute limit comes from the login time stored at login (`signals.track_session`).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            session = request.session
            started = session.get("login_at")
            if started is None:
                session["login_at"] = now
            elif now - started > settings.SESSION_ABSOLUTE_LIFETIME:
                forget_session(request)
                return _redirect(request, f"{reverse('login')}?expired=1")
            seen = session.get("seen_at")
            if seen is None or not 0 <= now - seen < SESSION_REFRESH_INTERVAL:
                session["seen_at"] = now  # modified: SessionMiddleware saves it, renewing expiry
            permission_cache.prime(request)
        return self.get_response(request)


class SecondFactorMiddleware:
    """Send a signed-in member of staff who has not passed the second factor to do so.

    Staff with a confirmed TOTP device must always enter a code. Staff without one are sent to
    enrol; when `OTP_REQUIRED` is off (the demo), they may skip enrolment for the session.
    Past the second factor, staff signing in with a one-time password choose their own.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(_OTP_EXEMPT_PREFIXES)
        ):
            target = None
            if not user.is_verified() and not request.session.get("otp_skipped"):
                from django_otp import user_has_device

                target = "otp_verify" if user_has_device(user) else "otp_enrol"
            elif getattr(user, "must_change_password", False):
                target = "password_change"
            if target:
                here = request.get_full_path()
                if getattr(request, "htmx", False) and request.htmx.current_url_abs_path:
                    here = request.htmx.current_url_abs_path
                query = urlencode({"next": here})
                return _redirect(request, f"{reverse(target)}?{query}")
        return self.get_response(request)
