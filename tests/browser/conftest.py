"""Browser tests: pytest-playwright driving the system Chromium (Debian's package) against
pytest-django's live server. No test tool downloads a browser: the executable is found on PATH
(`chromium`) or at CHROMIUM_PATH; without one these tests are skipped with a message.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make for
# set-up are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = (
    os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
)


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason="no system Chromium (apt-get install chromium)")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def login(live_server, page):
    """login(user, page=page) signs `user` in through the real form and the second factor:
    the user gets a confirmed TOTP device and the test types its current code, as a person
    would from an authenticator app. Pass another `page` to sign in in a second context."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from playwright.sync_api import expect

    def do(user, password="correct-horse-battery", page=page):
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="default", defaults={"confirmed": True}
        )
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        token = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        page.get_by_label("6-digit code").fill(str(token).zfill(device.digits))
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("button", name=user.username)).to_be_visible()
        page.wait_for_load_state()  # app.js (keyboard shortcuts) runs before "load"
        return page

    return do
