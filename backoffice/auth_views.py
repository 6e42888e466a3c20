"""Sign-in, the second factor (enrol with a QR code, verify, replace) and one's own password.

The flow: username and password (django-axes locks a username+IP pair after 10 failures),
then a TOTP code from an authenticator app (enrolment on first sign-in), then, after a
one-time password, a password of one's own. `SecondFactorMiddleware` sends anyone who skips a
step back to it; the pages here are exempt from it and check what they need themselves.
"""

from __future__ import annotations

import math
import re
from base64 import b32encode
from functools import wraps

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import StaffSession
from .staff_forms import OTPCodeForm, OwnPasswordForm, SignInForm
from .staff_services import (
    do_change_own_password,
    do_confirm_otp_device,
    do_reset_own_otp,
    do_start_otp_enrolment,
    note_otp_failure,
)

# The shell's side menu is hidden on these pages: nothing in it is reachable yet.
_BARE = {"menu": None}


def _next_url(request, default: str | None = None) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default or reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def _confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def _verified_required(view):
    """Signed in and past the second factor (or allowed to skip it in the demo)."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.is_verified() and not request.session.get("otp_skipped"):
            target = "otp_verify" if _confirmed_device(request.user) else "otp_enrol"
            return redirect(_with_next(target, request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapped


def _throttle_message(device: TOTPDevice) -> str | None:
    allowed, data = device.verify_is_allowed()
    if allowed:
        return None
    until = (data or {}).get("locked_until")
    if until:
        seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
        unit = "second" if seconds == 1 else "seconds"
        return f"Too many wrong codes. Wait {seconds} {unit} and try again."
    return "Too many wrong codes. Wait a moment and try again."


def _check_code(form: OTPCodeForm, device: TOTPDevice, *, stage: str) -> bool:
    """Validate the form and the code against `device`, with django-otp's throttling."""
    if not form.is_valid():
        return False
    throttled = _throttle_message(device)
    if throttled:
        form.add_error("code", throttled)
        return False
    if not device.verify_token(form.cleaned_data["code"]):
        note_otp_failure(device.user, stage=stage)
        form.add_error(
            "code",
            "That code is not right, or was used already. Check that your phone's clock is "
            "set automatically, wait for the next code and try again.",
        )
        return False
    return True


def _qr_svg(data: str) -> str:
    """The QR code of `data` as inline SVG: no image request leaves the page."""
    image = qrcode.make(
        data,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=2,
    )
    svg = image.to_string(encoding="unicode")
    # Let the page size it (the viewBox scales) rather than the millimetres qrcode writes.
    svg = (
        re.sub(r'\s(width|height)="[^"]*"', "", svg.split(">", 1)[0], count=2)
        + ">"
        + (svg.split(">", 1)[1])
    )
    return svg.replace(
        "<svg ", '<svg class="d-block w-100 h-auto" role="img" aria-label="QR code to scan" ', 1
    )


def _grouped_secret(device: TOTPDevice) -> str:
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- sign-in and sign-out ------------------------------------------------------------------


class SignInView(auth_views.LoginView):
    """Username and password; then straight on to the second factor."""

    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        # Signing in is not a change to the account: keep `last_login` out of its history.
        user.skip_history_when_saving = True
        try:
            return super().form_valid(form)
        finally:
            del user.skip_history_when_saving

    def get_success_url(self):
        target = super().get_success_url()
        user = self.request.user
        if _confirmed_device(user):
            return _with_next("otp_verify", target)
        return _with_next("otp_enrol", target)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        notice = None
        if self.request.GET.get("expired"):
            hours = settings.SESSION_ABSOLUTE_LIFETIME // 3600
            notice = f"You were signed out: a session lasts at most {hours} hours. Sign in again."
        elif (
            self.request.method == "GET"
            and settings.SESSION_COOKIE_NAME in self.request.COOKIES
            and self.request.session.is_empty()
        ):
            minutes = settings.SESSION_COOKIE_AGE // 60
            notice = (
                f"Your session ended after {minutes} minutes without activity, or an admin "
                "ended it. Sign in again."
            )
        context.update(title="Sign in", notice=notice, **_BARE)
        return context


class SignOutView(auth_views.LogoutView):
    """Sign out (POST only), drop the session's tracking row, and say so on a page of its own
    (not the sign-in form, which would read as if something had gone wrong)."""

    template_name = "registration/logged_out.html"

    def post(self, request, *args, **kwargs):
        key = request.session.session_key
        if key:
            StaffSession.objects.filter(session_key=key).delete()
        return super().post(request, *args, **kwargs)

    def get_default_redirect_url(self):
        return self.request.path  # render logged_out.html rather than redirect

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"title": "Signed out", **_BARE}


# --- second factor -------------------------------------------------------------------------


@never_cache
@login_required
def otp_enrol(request):
    """Enrol an authenticator app: QR code and secret, then a code to prove it works.

    With a device already: shows it (once verified) with the way to replace it.
    """
    user = request.user
    next_url = _next_url(request)
    device = _confirmed_device(user)
    if device is not None:
        if not user.is_verified():
            return redirect(_with_next("otp_verify", next_url))
        return render(
            request,
            "registration/otp_status.html",
            {"title": "Second factor", "device": device, **_BARE},
        )

    if request.method == "POST" and "skip" in request.POST:
        if settings.OTP_REQUIRED:
            messages.error(request, "A second factor is required here: enrol to continue.")
            return redirect(_with_next("otp_enrol", next_url))
        request.session["otp_skipped"] = True
        messages.warning(
            request, "Second factor skipped for this session. You will be asked again next time."
        )
        return redirect(next_url)

    pending = do_start_otp_enrolment(user)
    form = OTPCodeForm(request.POST or None)
    if request.method == "POST" and _check_code(form, pending, stage="enrolment"):
        device = do_confirm_otp_device(pending, acting_user=user)
        otp_login(request, device)
        request.session.pop("otp_skipped", None)
        messages.success(
            request, "Your authenticator app is set up. You will need it at every sign-in."
        )
        return redirect(next_url)
    return render(
        request,
        "registration/otp_enrol.html",
        {
            "title": "Set up your second factor",
            "form": form,
            "qr_svg": mark_safe(_qr_svg(pending.config_url)),  # noqa: S308 - our own SVG
            "secret": _grouped_secret(pending),
            "digits": pending.digits,
            "step": pending.step,
            "issuer": getattr(settings, "OTP_TOTP_ISSUER", ""),
            "next": next_url,
            "can_skip": not settings.OTP_REQUIRED,
            **_BARE,
        },
    )


@never_cache
@login_required
def otp_verify(request):
    """Enter the code from one's authenticator app to finish signing in."""
    user = request.user
    next_url = _next_url(request)
    if user.is_verified():
        return redirect(next_url)
    device = _confirmed_device(user)
    if device is None:
        return redirect(_with_next("otp_enrol", next_url))
    form = OTPCodeForm(request.POST or None)
    if request.method == "POST" and _check_code(form, device, stage="sign-in"):
        otp_login(request, device)
        return redirect(next_url)
    return render(
        request,
        "registration/otp_verify.html",
        {"title": "Enter your code", "form": form, "next": next_url, **_BARE},
    )


@never_cache
@_verified_required
def otp_reset(request):
    """Replace one's own authenticator app: confirm with a current code, then enrol again."""
    device = _confirmed_device(request.user)
    if device is None:
        return redirect("otp_enrol")
    form = OTPCodeForm(request.POST or None)
    if request.method == "POST" and _check_code(form, device, stage="device replacement"):
        do_reset_own_otp(acting_user=request.user)
        request.session.pop(DEVICE_ID_SESSION_KEY, None)
        messages.info(request, "Your old authenticator app is removed. Set up the new one now.")
        return redirect("otp_enrol")
    return render(
        request,
        "registration/otp_reset.html",
        {"title": "Replace your authenticator app", "form": form, "device": device, **_BARE},
    )


# --- own password --------------------------------------------------------------------------


@never_cache
@sensitive_post_parameters()
@_verified_required
def password_change(request):
    """Choose a new password; after a one-time password this is required before anything."""
    user = request.user
    forced = bool(user.must_change_password)
    form = OwnPasswordForm(user, request.POST or None, ask_old=not forced)
    if request.method == "POST" and form.is_valid():
        do_change_own_password(acting_user=user, password=form.cleaned_data["new_password1"])
        old_key = request.session.session_key
        update_session_auth_hash(request, user)  # keeps this session; others end
        StaffSession.objects.filter(session_key=old_key).update(
            session_key=request.session.session_key
        )
        messages.success(request, "Your password is changed. Your other sessions have ended.")
        return redirect(_next_url(request))
    return render(
        request,
        "registration/password_change.html",
        {
            "title": "Choose your password" if forced else "Change your password",
            "form": form,
            "forced": forced,
            "next": _next_url(request),
            **(_BARE if forced else {}),
        },
    )
