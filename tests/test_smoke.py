"""The shell answers: home, search, health, and the error pages in the layout."""

import pytest

pytestmark = pytest.mark.django_db


def test_home_lists_role_queues(make_staff, client_for):
    user = make_staff("Support")
    response = client_for(user).get("/")
    assert response.status_code == 200
    assert b"Back office" in response.content


def test_anonymous_home_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_health_reports_each_dependency(client):
    response = client.get("/health/")
    body = response.json()
    assert set(body["checks"]) == {"database", "redis", "workers"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


def test_unknown_page_is_404_in_layout(make_staff, client_for):
    response = client_for(make_staff("Support")).get("/no-such-page/")
    assert response.status_code == 404
