"""Each role's main workflow, end to end in headless Chromium against the live server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_anonymous_visitor_gets_the_login_page_and_a_wrong_password_is_explained(
    live_server, page, make_staff
):
    make_staff("Support", username="ann")
    page.goto(f"{live_server.url}/support/")

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/support/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Sign in").click()

    form = page.locator("form").filter(has=page.get_by_role("button", name="Sign in"))
    expect(form.get_by_role("alert")).to_contain_text(
        "That username and password do not match an active account"
    )
    expect(page.get_by_label("Username")).to_have_value("ann")
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
