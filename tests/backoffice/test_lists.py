"""The list-page pattern (ObjectListView), exercised on the audit trail: filters in the query
string, the htmx fragment, capped pages and counts, safe CSV, saved filters, query counts."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from backoffice.audit import record_event
from backoffice.models import SavedFilter

pytestmark = pytest.mark.django_db

LIST = reverse("backoffice:audit_list")


@pytest.fixture
def auditor(make_staff):
    return make_staff("Auditor", brands=[])


@pytest.fixture
def client(auditor, client_for):
    return client_for(auditor)


def shown(response) -> list[int]:
    return [row.record.pk for row in response.context["table"].paginated_rows]


def many(n: int, action: str = "tests.list") -> list:
    return [record_event(action, summary=f"row {i}") for i in range(n)]


def test_filters_live_in_the_query_string(client):
    wanted = record_event("tests.wanted")
    many(3)
    response = client.get(LIST, {"action": "tests.wanted"})
    assert shown(response) == [wanted.pk]
    html = response.content.decode()
    assert 'name="action" value="tests.wanted"' in html  # the form shows what filters the page
    assert 'name="query" value="action=tests.wanted"' in html  # and "save this filter" keeps it


def test_htmx_request_for_the_table_gets_only_the_fragment(client):
    many(2)
    response = client.get(
        LIST, {"action": "tests."}, headers={"HX-Request": "true", "HX-Target": "list-table"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<table" in html and 'id="row-count"' in html
    assert "<html" not in html and "<form" not in html and "Saved filters" not in html


def test_htmx_request_for_something_else_gets_the_page(client):
    response = client.get(LIST, headers={"HX-Request": "true", "HX-Target": "main"})
    assert "<html" in response.content.decode()


def test_page_beyond_the_max_offset_is_404_with_a_message(client, settings):
    settings.LIST_MAX_OFFSET = 60
    many(3)
    assert client.get(LIST, {"page": 2}).status_code == 404  # past the last row
    response = client.get(LIST, {"page": 3})  # rows 101.. are past the offset cap
    assert response.status_code == 404
    assert "narrow the filters" in response.content.decode()


def test_page_that_is_not_a_number_shows_the_first(client):
    first = many(1)[0]
    response = client.get(LIST, {"page": "x", "action": "tests.list"})
    assert shown(response) == [first.pk]


def test_page_size_from_the_url_is_capped(client):
    response = client.get(LIST, {"per_page": 1_000_000})
    assert response.context["table"].paginator.per_page == 200
    assert client.get(LIST, {"per_page": 7}).context["table"].paginator.per_page == 7


def test_deep_pages_within_the_cap_are_served(client, settings):
    settings.LIST_MAX_OFFSET = 60
    many(60)
    response = client.get(LIST, {"page": 2, "action": "tests.list"})
    assert response.status_code == 200
    assert len(shown(response)) == 10


def test_count_is_exact_below_the_limit(client, settings):
    settings.LIST_COUNT_LIMIT = 5
    many(4)
    response = client.get(LIST, {"action": "tests.list"})
    assert response.context["row_count"] == 4 and not response.context["row_count_capped"]
    assert ">4 rows<" in response.content.decode()


def test_count_says_more_than_above_the_limit(client, settings):
    settings.LIST_COUNT_LIMIT = 5
    many(7)
    response = client.get(LIST, {"action": "tests.list"})
    assert response.context["row_count"] == 5 and response.context["row_count_capped"]
    assert "More than 5 rows" in response.content.decode()


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_export_neutralises_formula_cells(client, prefix):
    record_event("tests.csv", summary=f"{prefix}SUM(A1:A9)")
    response = client.get(LIST, {"action": "tests.csv", "export": "csv"})
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["summary"] for r in rows] == [f"'{prefix}SUM(A1:A9)"]


def test_csv_export_leaves_plain_cells_alone(client):
    record_event("tests.csv", summary="Refund 12.50 EUR, approved")
    response = client.get(LIST, {"action": "tests.csv", "export": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["summary"] == "Refund 12.50 EUR, approved"


def test_saved_filter_is_created_for_its_owner(client, auditor):
    response = client.post(
        reverse("backoffice:savedfilter_create"),
        {
            "list_name": "backoffice:audit_list",
            "name": "Exports",
            "query": "action=audit.exported",
            "next": f"{LIST}?action=audit.exported",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"{LIST}?action=audit.exported"
    saved = SavedFilter.objects.get()
    assert (saved.user, saved.name, saved.query) == (auditor, "Exports", "action=audit.exported")
    assert [f.name for f in client.get(LIST).context["saved_filters"]] == ["Exports"]


def test_saved_filter_with_bad_input_is_refused_and_says_why(client):
    response = client.post(
        reverse("backoffice:savedfilter_create"),
        {"list_name": "backoffice:audit_list", "name": "", "query": "x", "next": LIST},
        follow=True,
    )
    assert not SavedFilter.objects.exists()
    assert "The filter was not saved" in response.content.decode()


def test_saved_filter_next_must_be_local(client):
    response = client.post(
        reverse("backoffice:savedfilter_create"),
        {"list_name": "l", "name": "n", "query": "", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


def test_saved_filters_are_private(client, auditor, make_staff, client_for):
    other = make_staff("Compliance")
    theirs = SavedFilter.objects.create(user=other, list_name="backoffice:audit_list", name="T")
    mine = SavedFilter.objects.create(user=auditor, list_name="backoffice:audit_list", name="M")
    assert [f.name for f in client.get(LIST).context["saved_filters"]] == ["M"]
    delete = "backoffice:savedfilter_delete"
    assert client.post(reverse(delete, kwargs={"pk": theirs.pk})).status_code == 404
    assert SavedFilter.objects.filter(pk=theirs.pk).exists()
    assert client.post(reverse(delete, kwargs={"pk": mine.pk}), {"next": LIST}).status_code == 302
    assert not SavedFilter.objects.filter(pk=mine.pk).exists()


def test_list_query_count_does_not_grow_with_rows(client, brand_a, django_assert_max_num_queries):
    for i in range(60):
        record_event("tests.list", brand=brand_a, summary=f"row {i}")
    client.get(LIST)  # first request of the session settles content types and the session
    with django_assert_max_num_queries(10):
        response = client.get(LIST)
    assert len(shown(response)) == 50
    with django_assert_max_num_queries(10):
        client.get(LIST, {"action": "tests.", "brand": brand_a.pk, "since": "2020-01-01"})
